#!/usr/bin/env bash
# Line coverage per crate from an LCOV file, and a gate: every crate listed
# under crates/ must reach the minimum. Usage: coverage-gate.sh LCOV [MIN]
set -euo pipefail
lcov="${1:?usage: coverage-gate.sh LCOV [MIN_PERCENT]}"
min="${2:-80}"
[ -s "$lcov" ] || { echo "coverage: $lcov is missing or empty" >&2; exit 1; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
awk -v min="$min" -v root="$root/" '
  /^SF:/ {
    path = substr($0, 4)
    if (index(path, root) == 1) path = substr(path, length(root) + 1)
    crate = ""
    # Library and binary code of crates/<name>/src; tests are not measured.
    if (match(path, /^crates\/[^\/]+\/src\//)) {
      split(path, parts, "/")
      crate = parts[2]
    }
    next
  }
  /^LF:/ { if (crate != "") found[crate] += substr($0, 4); next }
  /^LH:/ { if (crate != "") hit[crate] += substr($0, 4); next }
  END {
    failed = 0
    n = 0
    for (c in found) names[++n] = c
    # Sort the names (insertion sort: a few dozen at most).
    for (i = 2; i <= n; i++) { v = names[i]; j = i - 1; while (j > 0 && names[j] > v) { names[j + 1] = names[j]; j-- } names[j + 1] = v }
    printf "%-18s %8s %8s %8s\n", "crate", "lines", "covered", "percent"
    for (i = 1; i <= n; i++) {
      c = names[i]
      pct = found[c] ? 100 * hit[c] / found[c] : 100
      mark = pct + 1e-9 >= min ? "" : "  < " min " %"
      if (mark != "") failed = 1
      printf "%-18s %8d %8d %7.1f%%%s\n", c, found[c], hit[c], pct, mark
      tf += found[c]; th += hit[c]
    }
    if (tf) printf "%-18s %8d %8d %7.1f%%\n", "all", tf, th, 100 * th / tf
    if (n == 0) { print "coverage: no crate found in the report" > "/dev/stderr"; exit 1 }
    if (failed) { printf "coverage: a crate is under %s %% of its lines\n", min > "/dev/stderr"; exit 1 }
  }' "$lcov"
