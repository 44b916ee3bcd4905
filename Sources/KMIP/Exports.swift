// The wire format lives in KMIPCodec (shared with the simulated key server); clients see it through KMIP.
@_exported import KMIPCodec
