"""``python -m visual_erm.bench``: score judges on VC-RewardBench (the flags: ``visual_erm.bench.cli``)."""
from visual_erm.bench.cli import main

main()
