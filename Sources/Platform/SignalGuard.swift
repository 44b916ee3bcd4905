#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` with SIGPIPE blocked on this thread, then discards a SIGPIPE it raised.
///
/// OpenSSL writes to the socket with plain write(2), and a helper program may close its standard
/// input before reading all of it: a peer that went away would otherwise kill the whole process
/// with SIGPIPE. A library cannot rely on its host ignoring it.
public func withoutSIGPIPE<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
    var pipeOnly = sigset_t()
    sigemptyset(&pipeOnly)
    sigaddset(&pipeOnly, SIGPIPE)
    var previous = sigset_t()
    pthread_sigmask(SIG_BLOCK, &pipeOnly, &previous)
    var pendingBefore = sigset_t()
    sigpending(&pendingBefore)
    let alreadyPending = sigismember(&pendingBefore, SIGPIPE) == 1
    defer {
        var pending = sigset_t()
        sigpending(&pending)
        if !alreadyPending && sigismember(&pending, SIGPIPE) == 1 {
            var zero = timespec(tv_sec: 0, tv_nsec: 0)
            sigtimedwait(&pipeOnly, nil, &zero)
        }
        pthread_sigmask(SIG_SETMASK, &previous, nil)
    }
    return try body()
}
