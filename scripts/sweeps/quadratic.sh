#!/bin/sh
# Example external objective for `ragtune tune run` (no Python needed).
# Reads {"trial": N, "params": {"x": .., "n": .., "opt": ".."}} on stdin,
# prints one intermediate line per "epoch", then the result line.
# A made-up "score" peaks at x = 0.3, n = 4, opt = "adam"; "cost" grows with n.
awk '
function num(key,   m) {
	if (match($0, "\"" key "\": *-?[0-9.eE+-]+")) {
		m = substr($0, RSTART, RLENGTH); sub(/^[^:]*: */, "", m); return m + 0
	}
	return 0
}
{
	x = num("x"); n = num("n"); opt = ($0 ~ /"opt": *"adam"/) ? 0 : 0.1
	score = 1 - (x - 0.3)^2 - 0.01 * (n - 4)^2 - opt
	for (epoch = 0; epoch < 3; epoch++)
		printf("{\"step\": %d, \"intermediate\": {\"score\": %.6f}}\n", epoch, score * (epoch + 1) / 3)
	printf("{\"score\": %.6f, \"cost\": %d, \"note\": \"awk\"}\n", score, n * 100)
}'
