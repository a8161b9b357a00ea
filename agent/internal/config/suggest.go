package config

import (
	"fmt"
	"slices"
	"strings"
)

// unknownNames warns about every DYNOSCOPE_* variable the agent does not
// know (with the closest known name), and about GRAFANA_CLOUD_* variables
// that look like a typo of a known one (other tools use that prefix too).
func unknownNames(env map[string]string) []string {
	known := KnownNames()
	var names []string
	for k := range env {
		if (strings.HasPrefix(k, "DYNOSCOPE_") || strings.HasPrefix(k, "GRAFANA_CLOUD_")) && !slices.Contains(known, k) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var out []string
	for _, k := range names {
		best, dist := Closest(k, known)
		switch {
		case dist <= max(3, len(k)/4):
			out = append(out, fmt.Sprintf("%s is not a dynoscope variable: did you mean %s?", k, best))
		case strings.HasPrefix(k, "DYNOSCOPE_"):
			out = append(out, fmt.Sprintf("%s is not a dynoscope variable: see dynoscope config for the known names", k))
		}
	}
	return out
}

// Closest returns the candidate with the smallest Levenshtein distance to
// name, and that distance.
func Closest(name string, candidates []string) (string, int) {
	best, bestDist := "", -1
	for _, c := range candidates {
		if d := levenshtein(name, c); bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	return best, bestDist
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
