"""Neural-network building blocks with PyTorch's conventions: Module, layers, functional ops, autocast."""
from .module import (Module, ModuleList, Sequential, Linear, Embedding, LayerNorm, Dropout, GELU, ReLU, Tanh, Sigmoid,
                     SiLU, Identity, LeakyReLU, Softmax, Flatten, MSELoss, CrossEntropyLoss, autocast)
from .module import (Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, BatchNorm1d,
                     BatchNorm2d, BatchNorm3d, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, GroupNorm, RMSNorm,
                     MaxPool1d, MaxPool2d, MaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d, AdaptiveAvgPool1d,
                     AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool2d, MaxUnpool2d, Upsample, LSTMCell)
from . import functional, init
from .state import save_safetensors, load_safetensors, SafetensorsError

__all__ = ["Module", "ModuleList", "Sequential", "Linear", "Embedding", "LayerNorm", "Dropout", "GELU", "ReLU", "Tanh",
           "Sigmoid", "SiLU", "Identity", "LeakyReLU", "Softmax", "Flatten", "MSELoss", "CrossEntropyLoss", "autocast",
           "functional", "save_safetensors", "load_safetensors", "SafetensorsError",
           "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "BatchNorm1d",
           "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "GroupNorm", "RMSNorm",
           "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d",
           "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool2d", "MaxUnpool2d", "Upsample", "LSTMCell", "init"]
