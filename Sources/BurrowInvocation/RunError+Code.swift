package import BurrowAPI
package import BurrowRuntime

extension RunError {
    /// The code of a sandbox that could not start or be supervised (a
    /// failed result's `error.code`): the one `ErrorCode` named as the
    /// failure's `reason`, which ToolFailed records.
    package var code: ErrorCode { ErrorCode.result(named: reason) ?? .internal }
}
