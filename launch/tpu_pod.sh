#!/usr/bin/env bash
# Start the same training command on every host of a TPU VM pod.
#
#   launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [--config.key=value ...]
#   (CONFIG e.g. configs/qwen3vl_8b_erm.py or configs/qwen3vl_8b_grpo.py:chart)
#
# Every host runs `python -m launch.main --multihost`, which calls
# jax.distributed.initialize() (the TPU runtime supplies the coordinator) and
# feeds its own rows: Visual-ERM SFT reads its shard of the reward data
# (process_index::process_count); GRPO hosts read the same task stream, keep
# their block of every micro-batch and render it with their own RenderPool.
# WORKDIR should be shared storage (gs:// or a shared mount) so orbax
# checkpoints are written once and every host resumes from them.
# Assumes the repository is checked out at ~/visual-erm-jax on every host and
# installed there (`pip install -e ".[tpu]"`: jax with the matching libtpu). Check that every program
# fits first, on any machine: `python -m launch.aot --config=CONFIG --topology=v5p-64`.
set -euo pipefail
if [ "$#" -lt 4 ]; then
  echo "usage: $0 TPU_NAME ZONE CONFIG WORKDIR [--config.key=value ...]" >&2
  exit 2
fi
name=$1 zone=$2 config=$3 workdir=$4
shift 4
overrides=$(printf ' %q' "$@")
gcloud compute tpus tpu-vm ssh "$name" --zone="$zone" --worker=all --command="
  cd ~/visual-erm-jax &&
  python -m launch.main --multihost --config=$config --workdir=$workdir$overrides \
    2>&1 | tee -a ~/visual_erm_\$(hostname).log"
