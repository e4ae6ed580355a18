package bundle

// Protection is what a verification established about a bundle, the input
// to SecurityLevel. The caller sets a field only after the check passed.
type Protection struct {
	// BundleTUF: bundle.json (thin) or the archive (thick) matched a TUF
	// target of the bundle's repository (CNAB Security 303).
	BundleTUF bool
	// ImagesTUF: every image the bundle names is pinned under TUF, by image
	// targets of its own or by its contentDigest in a TUF-verified bundle.json
	// (the caller decides which it accepts).
	ImagesTUF bool
	// BundleInToto: in-toto verification of the bundle's supply chain passed,
	// with the root layout and its keys delivered as TUF targets.
	BundleInToto bool
	// ImagesInToto: in-toto verification passed for every image.
	ImagesInToto bool
}

// Level is a CNAB Security "gradual security" level (spec 300): 0, 1a, 1b,
// 2, 3a, 3b or 4. The constants are ordered by Number; 1a/1b and 3a/3b are
// alternatives at the same number, not steps.
type Level int

const (
	Level0  Level = iota // neither images nor bundles signed
	Level1a              // images signed using TUF, bundle unsigned
	Level1b              // bundle signed using TUF, images unsigned
	Level2               // both signed using TUF
	Level3a              // images under TUF and in-toto, bundle under TUF
	Level3b              // bundle under TUF and in-toto, images under TUF
	Level4               // both under TUF and in-toto
)

// String is the spec's name: "0", "1a", …, "4".
func (l Level) String() string {
	switch l {
	case Level0:
		return "0"
	case Level1a:
		return "1a"
	case Level1b:
		return "1b"
	case Level2:
		return "2"
	case Level3a:
		return "3a"
	case Level3b:
		return "3b"
	case Level4:
		return "4"
	}
	return "invalid"
}

// Number is the level without its letter: 0 to 4.
func (l Level) Number() int {
	switch l {
	case Level1a, Level1b:
		return 1
	case Level2:
		return 2
	case Level3a, Level3b:
		return 3
	case Level4:
		return 4
	}
	return 0
}

// SecurityLevel maps what was verified to the highest level of CNAB
// Security spec 300 it fully meets. In-toto counts only on top of TUF for
// the same artifact, since the spec delivers the layout and its keys as TUF
// targets; a combination the spec does not name (bundle under in-toto,
// images unsigned) falls to the level below it (1b).
func SecurityLevel(p Protection) Level {
	bundleInToto := p.BundleTUF && p.BundleInToto
	imagesInToto := p.ImagesTUF && p.ImagesInToto
	switch {
	case bundleInToto && imagesInToto:
		return Level4
	case bundleInToto && p.ImagesTUF:
		return Level3b
	case imagesInToto && p.BundleTUF:
		return Level3a
	case p.BundleTUF && p.ImagesTUF:
		return Level2
	case p.BundleTUF:
		return Level1b
	case p.ImagesTUF:
		return Level1a
	}
	return Level0
}
