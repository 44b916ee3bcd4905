/// The release the three programs belong to, shown by `--version` (one number for the set:
/// sedlock, sedlockd and sedsim are built and shipped together). A package build reads it too.
public enum SedlockVersion {
    public static let number = "0.9.0"
}
