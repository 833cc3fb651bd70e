/// The symbolic name of common errno values ("EPERM"), or "errno N".
/// Used in messages and in the plan, where operators grep for the name.
package func errnoName(_ code: Int32) -> String {
    errnoNames[code] ?? "errno \(code)"
}

private let errnoNames: [Int32: String] = [
    1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 9: "EBADF", 10: "ECHILD", 11: "EAGAIN",
    12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 18: "EXDEV", 20: "ENOTDIR",
    21: "EISDIR", 22: "EINVAL", 24: "EMFILE", 27: "EFBIG", 28: "ENOSPC", 30: "EROFS", 36: "ENAMETOOLONG",
    38: "ENOSYS", 40: "ELOOP", 95: "EOPNOTSUPP", 97: "EAFNOSUPPORT", 110: "ETIMEDOUT", 111: "ECONNREFUSED",
]
