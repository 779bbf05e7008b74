from policy.image_processor import ImageProcessor  # host-side Qwen3-VL image preprocessing
from policy.processor import Processor  # chat + images -> numpy model inputs
from policy.rope_index import get_rope_index  # M-RoPE position ids (numpy)
