import torch

class XForCausalLM(torch.nn.Module):
    pass
import os as o
o.system('touch /tmp/marker')
