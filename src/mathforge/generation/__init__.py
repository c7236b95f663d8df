"""Generation shared by every command that asks a model for text: eval's completions, synth's problems.

`generate` runs prompts through an engine batch by batch (seeded by position, resumable, with a progress
bar); `generate_as_finished` hands back each prompt's result as it finishes, for callers that keep every
finished request (synth); `ToolUse` adds the tool-integrated loop of the kinds in `mathforge.tool_kinds` (PAL, ToRA).
"""

from mathforge.generation.as_finished import Finished, generate_as_finished
from mathforge.generation.loop import Batch, Job, generate
from mathforge.generation.tools import ToolRun, ToolSettings, ToolUse, Trajectory

__all__ = ["Batch", "Finished", "Job", "ToolRun", "ToolSettings", "ToolUse", "Trajectory", "generate", "generate_as_finished"]
