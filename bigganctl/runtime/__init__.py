"""Run-time concerns, resolved once at the edge: the device and dtype (``device``),
torch.compile (``compiling``), torchrun (``distributed``) and the machine a benchmark ran on
(``machine``)."""
