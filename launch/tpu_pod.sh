#!/usr/bin/env bash
# Put this repository on every host of a TPU VM pod, install it, and start the same training command on all.
#
#   launch/tpu_pod.sh [OPTIONS] TPU_NAME ZONE CONFIG WORKDIR [--config.key=value ...]
#   (CONFIG e.g. configs/qwen3vl_8b_erm.py or configs/qwen3vl_8b_grpo.py:chart; WORKDIR gs://BUCKET/run)
#
# Options:
#   --setup=copy    (default) pack the files git tracks here (`git ls-files`, so your uncommitted edits
#                   travel too) into a tarball, `gcloud ... scp` it to every worker, unpack it into
#                   ~/visual-erm-jax and `pip install -e ".[tpu]"` there: MaxText's multihost runner's way.
#   --setup=git     every worker clones --repo (default: this checkout's `origin` URL) at --ref (default:
#                   this checkout's HEAD commit) into ~/visual-erm-jax and installs it.
#   --setup=none    the code is already installed in ~/visual-erm-jax on every worker.
#   --workers=N     number of hosts (dry run only: how many per-host commands to print; default 2).
#   --dry-run       print what each step would run (the gcloud commands here and the command every
#                   host runs), run nothing.
#
# Every host runs `python -m launch.main --multihost`, which calls jax.distributed.initialize() (the
# TPU runtime supplies the coordinator) and feeds its own rows. WORKDIR must be storage every host
# sees (gs://): process 0 writes checkpoints, metrics and the run's config there once and every host
# resumes from them. Model checkpoints and data may be gs:// too; each host copies what it reads into
# its cache (~/.cache/visual_erm_jax/remote). Logs: ~/visual_erm_<hostname>.log on every host.
# Check that every program fits first, on any machine: `python -m launch.aot --config=CONFIG --topology=v5p-64`.
set -euo pipefail

setup=copy dry_run=0 workers=2 repo="" ref=""
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --setup=*) setup=${1#*=} ;;
    --repo=*) repo=${1#*=} ;;
    --ref=*) ref=${1#*=} ;;
    --workers=*) workers=${1#*=} ;;
    --dry-run) dry_run=1 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$#" -lt 4 ]; then
  echo "usage: $0 [--setup=copy|git|none] [--repo=URL] [--ref=REV] [--workers=N] [--dry-run]" \
       "TPU_NAME ZONE CONFIG WORKDIR [--config.key=value ...]" >&2
  exit 2
fi
case $setup in copy|git|none) ;; *) echo "--setup=$setup: allowed copy, git, none" >&2; exit 2 ;; esac
name=$1 zone=$2 config=$3 workdir=$4
shift 4
if [[ $workdir != gs://* ]]; then
  echo "warning: WORKDIR $workdir is not gs://; every host must see the same folder (a shared mount)" >&2
fi
here=$(cd "$(dirname "$0")/.." && pwd)
remote_dir='~/visual-erm-jax'
tarball=visual-erm-jax.tar.gz
overrides=$(printf ' %q' "$@")

install="cd $remote_dir && python3 -m pip install -q -e '.[tpu]'"
case $setup in
  copy) prepare="rm -rf $remote_dir && mkdir -p $remote_dir && tar xzf ~/$tarball -C $remote_dir && $install" ;;
  git)
    repo=${repo:-$(git -C "$here" remote get-url origin)}
    ref=${ref:-$(git -C "$here" rev-parse HEAD)}
    prepare="(test -d $remote_dir/.git || git clone $(printf '%q' "$repo") $remote_dir) && cd $remote_dir &&"
    prepare+=" git fetch -q origin && git checkout -q $(printf '%q' "$ref") && $install" ;;
  none) prepare="" ;;
esac
train="cd $remote_dir && python3 -m launch.main --multihost --config=$config --workdir=$workdir$overrides"
train+=" 2>&1 | tee -a ~/visual_erm_\$(hostname).log"

ssh_all() {  # run a command on every worker (gcloud runs them in parallel)
  gcloud compute tpus tpu-vm ssh "$name" --zone="$zone" --worker=all --command="$1"
}

if [ "$dry_run" = 1 ]; then
  if [ "$setup" = copy ]; then
    echo "here: (cd $here && git ls-files -z | tar czf /tmp/$tarball --null -T -)"
    echo "here: gcloud compute tpus tpu-vm scp /tmp/$tarball $name:~/ --zone=$zone --worker=all"
  fi
  for ((worker = 0; worker < workers; worker++)); do
    [ -n "$prepare" ] && echo "host $worker: $prepare"
    echo "host $worker: $train"
  done
  exit 0
fi

if [ "$setup" = copy ]; then
  (cd "$here" && git ls-files -z | tar czf "/tmp/$tarball" --null -T -)
  gcloud compute tpus tpu-vm scp "/tmp/$tarball" "$name":~/ --zone="$zone" --worker=all
fi
if [ -n "$prepare" ]; then
  ssh_all "$prepare"
fi
ssh_all "$train"
