"""Qwen3-VL in Flax NNX and the model-generic machinery around it (policy and Visual-ERM both)."""
from policy.config import Qwen3VLConfig  # dataclass config, from_hf/to_hf, presets
from policy.hf_io import load_pretrained, save_pretrained  # HF safetensors import/export
from policy.image_processor import ImageProcessor  # host-side Qwen3-VL image preprocessing
from policy.model import Qwen3VL, forward_logits  # NNX model + numpy-in/numpy-out logits
from policy.processor import Processor  # chat + images -> numpy model inputs
from policy.rope_index import get_rope_index  # M-RoPE position ids (numpy)
from policy.sampler import Sampler, SamplingParams  # jitted KV-cache generation
from policy.sharding import make_mesh  # device mesh over ("data", "fsdp", "tensor")

__all__ = [
    "ImageProcessor",
    "Processor",
    "Qwen3VL",
    "Qwen3VLConfig",
    "Sampler",
    "SamplingParams",
    "forward_logits",
    "get_rope_index",
    "load_pretrained",
    "make_mesh",
    "save_pretrained",
]
