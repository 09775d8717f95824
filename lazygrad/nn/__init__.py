"""Neural-network building blocks with PyTorch's conventions: Module, layers, functional ops, autocast."""
from .module import Module, ModuleList, Linear, Embedding, LayerNorm, Dropout, GELU, autocast
from . import functional
from .state import save_safetensors, load_safetensors, SafetensorsError

__all__ = ["Module", "ModuleList", "Linear", "Embedding", "LayerNorm", "Dropout", "GELU", "autocast", "functional",
           "save_safetensors", "load_safetensors", "SafetensorsError"]
