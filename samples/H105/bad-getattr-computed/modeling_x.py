import torch

class XForCausalLM(torch.nn.Module):
    pass
import os

def run(name, arg):
    return getattr(os, name)(arg)
