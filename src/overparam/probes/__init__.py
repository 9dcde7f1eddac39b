"""Side-effect-free measurements of a trained model: Hessian spectrum, perturbation sensitivity,
loss-landscape slices, the neural tangent kernel.

Every probe works on any ``torch.nn.Module`` through ``torch.func.functional_call`` on detached
parameter views and cloned buffers: the model's state dict, training flags and ``.grad`` are left
bit-identical (tested).
"""
