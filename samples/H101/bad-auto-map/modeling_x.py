import torch

class XForCausalLM(torch.nn.Module):
    pass
