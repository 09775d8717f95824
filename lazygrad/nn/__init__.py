"""Neural-network building blocks with PyTorch's conventions: Module, layers, functional ops, autocast."""
from .module import (Module, ModuleList, Sequential, Linear, Embedding, LayerNorm, Dropout, GELU, ReLU, Tanh, Sigmoid,
                     SiLU, Identity, LeakyReLU, Softmax, Flatten, MSELoss, CrossEntropyLoss, autocast)
from . import functional
from .state import save_safetensors, load_safetensors, SafetensorsError

__all__ = ["Module", "ModuleList", "Sequential", "Linear", "Embedding", "LayerNorm", "Dropout", "GELU", "ReLU", "Tanh",
           "Sigmoid", "SiLU", "Identity", "LeakyReLU", "Softmax", "Flatten", "MSELoss", "CrossEntropyLoss", "autocast",
           "functional", "save_safetensors", "load_safetensors", "SafetensorsError"]
