"""minireason: a small, readable reimplementation of Kim et al. (2025), "Reinforcement Learning vs.
Distillation: Understanding Accuracy and Capability in LLM Reasoning"."""
