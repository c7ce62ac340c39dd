// Package domain holds the registrar's rules (DESIGN §3): what a valid
// song description is, the canonical bytes the registrar signs, the song
// aggregate (versions, copies, disputes, sealed location, reveals) and
// Chromaprint fingerprints with their conflict index. No I/O.
package domain
