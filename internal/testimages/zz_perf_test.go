package testimages_test

import (
	"testing"
	"time"

	"github.com/relocate-dev/relocate/internal/testimages"
	"github.com/relocate-dev/relocate/internal/testregistry"
)

func TestPerfTmp(t *testing.T) {
	reg := testregistry.New(t)
	s := testimages.Spec{Repo: "bench/app-{i}", Tag: "v1", Count: 20, Layers: 3, LayerSize: 16 << 20, Shared: 1, Seed: 1}
	start := time.Now()
	imgs, err := testimages.Push(t.Context(), reg.Host, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pushed %d in %v", len(imgs), time.Since(start))
	start = time.Now()
	imgs, err = testimages.Push(t.Context(), reg.Host, s)
	t.Logf("re-pushed %d in %v %v", len(imgs), time.Since(start), err)
	start = time.Now()
	s.Platforms = []string{"linux/amd64", "linux/arm64"}
	s.Docker = true
	s.Repo = "bench/multi-{i}"
	imgs, err = testimages.Push(t.Context(), reg.Host, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pushed %d indexes in %v", len(imgs), time.Since(start))
	t.Log(reg.LogTail(5))
}
