"""Other tools' cassette formats, one adapter each: readers and writers between their files and our records.

- :mod:`vcr_ext.formats.llamastack`: llama-stack's ``api_recorder`` recordings;
- :mod:`vcr_ext.formats.vcrpy`: plain vcrpy cassettes (YAML or JSON serializer).

The core (``interactions``, ``persister``, ``cassette``) speaks only our records.
"""
