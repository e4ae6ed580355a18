package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

func (b *bench) renderSmall(w io.Writer) {
	if b.small == nil {
		return
	}
	r := b.res
	fmt.Fprintf(w, "## Small images\n\n")
	fmt.Fprintf(w, "Each image a config and 2 layers × 64KiB. relocate imports the archive it exported once; crane copies every image from the source registry, one call per image in sequence, as a shell loop would (it also pulls, and starts a process per image). Both go into a fresh, empty registry. Ratio = crane s ÷ relocate s in the same run, median over the runs (range in brackets). CPU ms/image adds the tool's CPU and the registries' (see *Where the time goes*): on a loaded machine it varies less than wall time.\n\n")
	fmt.Fprintf(w, "| images | relocate s | ms/image | CPU ms/image | peak RSS MiB | crane copy loop s | ms/image | CPU ms/image | ratio |\n|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	cpuPer := func(o op, n int) float64 {
		tool, reg := r.cpu(o)
		return 1000 * (tool + reg) / float64(n)
	}
	row := func(label string, n int, rel, cr op) {
		fmt.Fprintf(w, "| %s | %.2f | %.1f | %.1f | %.1f | %.2f | %.1f | %.1f | %s |\n",
			label, r.secs(rel), b.msPerImage(rel, n), cpuPer(rel, n), r.rssMiB(rel),
			r.secs(cr), b.msPerImage(cr, n), cpuPer(cr, n), times(r.ratios(cr, rel)))
	}
	for _, n := range b.cfg.small {
		row(fmt.Sprint(n), n, relSmall(n), craneSmall(n))
	}
	hi := b.cfg.small[len(b.cfg.small)-1]
	if r.has(relSmallMem(hi)) {
		row(fmt.Sprintf("%d, registry in memory", hi), hi, relSmallMem(hi), craneSmallMem(hi))
	}
	var exports []string
	for _, n := range b.cfg.small {
		exports = append(exports, fmt.Sprintf("%d images in %.2f s", n, r.smallExport[n].secs))
	}
	if r.has(relSmallMem(hi)) {
		fmt.Fprintf(w, "\nThe last row repeats the largest set into registries whose storage is on tmpfs (`/dev/shm`): distribution syncs every file it writes (an upload's start and hash states, the blob, every link: strace counted 410 fsyncs for 10 of these images), so on disk both tools mostly wait for those syncs, whatever the client does. In memory, what is left is the tools' and the registry's own work.\n")
	}
	fmt.Fprintf(w, "\nThe archives were exported once, untimed by the runs: %s.\n", strings.Join(exports, ", "))
	if sizes := b.cfg.small; len(sizes) > 1 {
		lo, hi := sizes[0], sizes[len(sizes)-1]
		fmt.Fprintf(w, "\nLinearity, time per image at %d ÷ at %d in the same run: relocate %s, crane %s (1 is linear; below 1, fixed costs spread over more images).\n",
			hi, lo, times(b.linearity(relSmall, lo, hi)), times(b.linearity(craneSmall, lo, hi)))
	}
	fmt.Fprintf(w, "\nRequests, counted by a reverse proxy (`net/http/httputil`, in the bench) in front of a fresh registry, in one extra untimed import of each set and that import again. Per image leaves out the registry ping, made once a run whatever the size.\n\n")
	fmt.Fprintf(w, "| images | import requests | per image | re-import requests | per image | import, by kind | re-import, by kind |\n|--:|--:|--:|--:|--:|---|---|\n")
	for _, n := range b.cfg.small {
		rc := r.smallRequests[n]
		fmt.Fprintf(w, "| %d | %d | %.2f | %d | %.2f | %s | %s |\n", n, rc.first.total(), rc.first.perImage(n), rc.again.total(), rc.again.perImage(n), rc.first, rc.again)
	}
	fmt.Fprintf(w, "\n")
}

// renderCPU shows where each operation's time went: the tool's CPU, the
// registries' CPU, and how much of the machine they used together.
func (b *bench) renderCPU(w io.Writer) {
	fmt.Fprintf(w, "## Where the time goes\n\n")
	fmt.Fprintf(w, "Median CPU seconds (user + system) of the tool (every call of a loop added up; for the ingest floor, the bench itself) and of the registries serving it (read from `/proc` before and after), next to the median wall time. Busy = CPU ÷ wall, out of %d CPUs: what is missing was spent waiting, or by other work on the machine.\n\n", b.machine.nproc)
	fmt.Fprintf(w, "| operation | wall s | tool CPU s | registry CPU s | busy |\n|---|--:|--:|--:|--:|\n")
	for _, o := range b.opOrder() {
		if !b.res.has(o) {
			continue
		}
		wall := b.res.secs(o)
		tool, reg := b.res.cpu(o)
		fmt.Fprintf(w, "| %s | %.2f | %.2f | %.2f | %.2f |\n", o, wall, tool, reg, (tool+reg)/wall)
	}
	fmt.Fprintf(w, "\n")
	b.renderBounds(w)
}

// renderBounds says how fast relocate could be against each peer if its
// work, as measured, kept every CPU busy all the time: the tool and the
// registries share the machine, so CPU seconds ÷ CPUs is a floor on wall
// time, and the peer's time ÷ that floor caps the ratio.
func (b *bench) renderBounds(w io.Writer) {
	pairs := [][2]op{{relExport, cranePull}, {relImport, cranePush}}
	if sizes := b.cfg.small; len(sizes) > 0 {
		hi := sizes[len(sizes)-1]
		pairs = append(pairs, [2]op{relSmall(hi), craneSmall(hi)}, [2]op{relSmallMem(hi), craneSmallMem(hi)})
	}
	var lines []string
	for _, p := range pairs {
		rel, peer := p[0], p[1]
		if !b.res.has(rel) || !b.res.has(peer) {
			continue
		}
		tool, reg := b.res.cpu(rel)
		if tool+reg <= 0 || b.machine.nproc <= 0 {
			continue // no CPU accounting on this system
		}
		floor := (tool + reg) / float64(b.machine.nproc)
		lines = append(lines, fmt.Sprintf("| %s, against %s | %.2f | %.2f | %.2f× | %s |", rel, peer, tool+reg, floor, b.res.secs(peer)/floor, times(b.res.ratios(peer, rel))))
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "CPU bounds: the tool and the registries share %d CPUs, so an operation needing C CPU seconds takes at least C ÷ %d, even with every CPU busy all the time. The peer's median time ÷ that floor is the most the ratio could be on this machine for relocate's work as measured; a goal above it needs less CPU (of relocate or of the registry), not better overlap.\n\n", b.machine.nproc, b.machine.nproc)
	fmt.Fprintf(w, "| operation | CPU s (tool + registries) | floor s | ratio at the floor | ratio measured |\n|---|--:|--:|--:|--:|\n%s\n\n", strings.Join(lines, "\n"))
}

func joinInts(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ", ")
}
