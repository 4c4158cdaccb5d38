"""Hugging Face export of leanvl VLMs (`leanvl vlm export`): trust_remote_code model + processor directories."""
