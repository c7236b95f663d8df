"""Make data: synthesize problems with a teacher model (`synth`), curate them through registered stages
(`curate`, with a funnel of what each stage dropped and why), deduplicate and decontaminate."""
