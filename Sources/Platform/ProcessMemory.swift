import CShims

/// A long-running process's heap, kept small: glibc otherwise gives every thread that allocates an
/// arena of its own and keeps what was freed in each, so a daemon whose requests run on many
/// threads grows by megabytes it no longer uses.
public enum ProcessMemory {
    /// Caps the number of malloc arenas (call once, early).
    public static func limitArenas(_ arenas: Int32 = 2) {
        _ = sedlock_limit_malloc_arenas(arenas)
    }

    /// Returns free heap pages to the kernel (after a burst of work).
    public static func releaseFreeMemory() {
        _ = sedlock_release_free_memory()
    }
}
