/* Header-only: the link framing shared by SimulatorLink and the preload library. */
