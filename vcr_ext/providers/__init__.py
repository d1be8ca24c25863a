"""Providers other than OpenAI: what their traffic looks like on the wire, one module each.

Each module names the classes of its provider's SDK that type a payload (read off the SDK
when it is installed; ``None`` otherwise, and the traffic is then stored with generic types
that replay the same bytes), and whatever framing the provider's wire needs that SSE and
JSON do not give. :mod:`vcr_ext.sdk_types` asks them, by route.
"""
