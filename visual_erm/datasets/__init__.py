"""Visual-ERM data as tensorflow-datasets (TFDS) datasets, written and read without TensorFlow.

Builders (import the module to register them with TFDS):
    reward.VisualErmReward          "visual_erm_reward": generated reward pairs, splits by generator seeds
    bench.VcRewardbenchSynthetic    "vc_rewardbench_synthetic": the synthetic VC-RewardBench
    bench.VcRewardbench             "vc_rewardbench": a local VC-RewardBench copy (manual_dir)

Reading needs only `tensorflow_datasets` and the files, not this package: a dataset is named by a
location string (`visual_erm.tfds_source`), and the existing readers (`records.reward_source`,
`visual_erm.bench.load_bench`) accept it wherever they accept a folder.
"""
