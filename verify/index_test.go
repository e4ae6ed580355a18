package verify

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/relocate-dev/relocate/layout"
)

// TestIndexAgreesWithTOC: index.json as export writes it passes, and so does
// one from before full names and listed attachments; an entry that would
// lead another tool (skopeo, oras, notation, containerd) to something else
// than the table of contents says is refused, naming it.
func TestIndexAgreesWithTOC(t *testing.T) {
	// entry finds the index.json entry of a digest.
	entry := func(idx *v1.IndexManifest, h v1.Hash) *v1.Descriptor {
		for i := range idx.Manifests {
			if idx.Manifests[i].Digest == h {
				return &idx.Manifests[i]
			}
		}
		t.Fatalf("no entry for %s", h)
		return nil
	}
	tests := []struct {
		name    string
		edit    func(s *synthetic)
		subject string // "" when the index must pass
		reason  string
	}{
		{"as written", func(*synthetic) {}, "", ""},
		{"written before full names and listed attachments", func(s *synthetic) {
			s.index.Manifests = s.index.Manifests[:len(s.toc.Images)]
			for i := range s.index.Manifests {
				d := &s.index.Manifests[i]
				d.Annotations[layout.AnnotationRefName] = layout.TagOf(d.Annotations[layout.AnnotationImageName])
			}
		}, "", ""},
		{"ref.name of another image", func(s *synthetic) {
			entry(s.index, s.toc.Images[0].Digest).Annotations[layout.AnnotationRefName] = s.toc.Images[1].Ref
		}, "registry.example/team/app-0:v1", `names it org.opencontainers.image.ref.name "registry.example/team/app-1:v1"`},
		{"named attachment", func(s *synthetic) {
			entry(s.index, s.toc.Attachments[0].Digest).Annotations = map[string]string{layout.AnnotationRefName: s.toc.Images[0].Ref}
		}, "attachment 0", "attached manifest with annotations in index.json"},
		{"attachment with another artifact type", func(s *synthetic) {
			entry(s.index, s.toc.Attachments[0].Digest).ArtifactType = "application/vnd.cncf.notary.signature"
		}, "attachment 0", `index.json describes this attached manifest as`},
		{"attachment with another size", func(s *synthetic) {
			entry(s.index, s.toc.Attachments[0].Digest).Size++
		}, "attachment 0", `index.json describes this attached manifest as`},
		{"attachment with embedded data", func(s *synthetic) {
			entry(s.index, s.toc.Attachments[0].Digest).Data = []byte("{}")
		}, "attachment 0", "carries embedded data"},
		{"image with urls", func(s *synthetic) {
			entry(s.index, s.toc.Images[0].Digest).URLs = []string{"https://elsewhere.example/blob"}
		}, "registry.example/team/app-0:v1", "carries urls"},
		{"unnamed entry that is no attachment", func(s *synthetic) {
			d := *entry(s.index, s.toc.Images[0].Digest)
			d.Annotations = nil
			s.index.Manifests = append(s.index.Manifests, d)
		}, "index.json", "is not an attached manifest of the table of contents"},
		{"attachment listed twice", func(s *synthetic) {
			s.index.Manifests = append(s.index.Manifests, *entry(s.index, s.toc.Attachments[0].Digest))
		}, "attachment 0", "attached manifest listed twice"},
		{"an attachment left out", func(s *synthetic) {
			m := s.index.Manifests
			for i := range m {
				if m[i].Digest == s.toc.Attachments[0].Digest {
					s.index.Manifests = append(m[:i:i], m[i+1:]...)
					break
				}
			}
		}, "attachment 0", "attached manifest in the table of contents but not in index.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := buildSynthetic(t, 3, 2)
			if len(s.index.Manifests) != 3+6 {
				t.Fatalf("index.json has %d entries, want 3 images and 6 attachments", len(s.index.Manifests))
			}
			tc.edit(s)
			subject := strings.Replace(tc.subject, "attachment 0", s.toc.Attachments[0].Digest.String(), 1)
			var ps Problems
			Structure(s.toc, s.index, s.small, &ps)
			list := ps.List()
			if tc.subject == "" {
				if len(list) != 0 {
					t.Fatalf("refused: %v", list)
				}
				return
			}
			if len(list) != 1 || list[0].Subject != subject || !strings.Contains(list[0].Reason, tc.reason) {
				t.Fatalf("problems %v, want one for %s: %s", list, subject, tc.reason)
			}
		})
	}
}
