#!/usr/bin/env bash
# Sums the TRX results of every test project into one line that CI reads: "N passed, N failed, N skipped".
# Usage: test-summary.sh RESULTS_DIR PROJECT...   (a project with no TRX file crashed: it counts as one failure)
set -euo pipefail
dir=$1; shift
passed=0 failed=0 skipped=0
for project in "$@"; do
  trx="$dir/$project.trx"
  if [[ ! -f "$trx" ]]; then
    printf '  %-34s no results (the test host crashed or did not build)\n' "$project"
    failed=$((failed + 1))
    continue
  fi
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n1)
  get() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
  p=$(get passed); f=$(get failed); e=$(get error); x=$(get executed); t=$(get total)
  # The TRX logger leaves notExecuted at 0 for a skipped test: what was not executed is the rest of the total.
  f=$((f + e)); n=$((t - x))
  printf '  %-34s %4d passed, %d failed, %d skipped\n' "$project" "$p" "$f" "$n"
  # The end-to-end suites' tests take seconds to minutes each on the real node and the guest node: show each one's time.
  if [[ $project == *EndToEnd* || $project == *GuestNode* ]]; then
    grep -o '<UnitTestResult [^>]*>' "$trx" | sed -n 's/.*testName="\([^"]*\)".*duration="\([^"]*\)".*outcome="\([^"]*\)".*/      \2  \3  \1/p' \
      | sed -E 's/NetTune\.(EndToEnd|GuestNode)\.Tests\.//' || true
  fi
  # The guest-node fixture logs its set-up steps, its total and the suite's wall time (xunit diagnostic messages, which
  # the TRX keeps as run infos); the per-test lines are already above.
  if [[ $project == *GuestNode* ]]; then
    grep -o '\[guest-node\] [^<]*' "$trx" | grep -v '\] test took' \
      | sed -e "s/&apos;/'/g" -e 's/&quot;/"/g' -e 's/&lt;/</g' -e 's/&gt;/>/g' -e 's/&amp;/\&/g' -e 's/^\[guest-node\] /      /' || true
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + n))
done
# CI shows only the end of the output: name each failed test with the start of its message, just above the totals.
if [[ $failed -gt 0 ]] && command -v python3 >/dev/null; then
  python3 - "$dir" "$@" <<'PY'
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
for project in sys.argv[2:]:
    try:
        root = ET.parse(f"{sys.argv[1]}/{project}.trx").getroot()
    except (OSError, ET.ParseError):
        continue
    for result in root.iterfind(".//t:UnitTestResult", ns):
        if result.get("outcome") not in ("Failed", "Error"):
            continue
        message = " ".join((result.findtext(".//t:ErrorInfo/t:Message", "", ns) or "").split())
        print(f"  FAILED {result.get('testName')}: {message[:400]}")
PY
fi
echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
