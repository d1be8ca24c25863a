"""The vcr-ext demo: an example suite recorded against an embedded fake OpenAI server."""
