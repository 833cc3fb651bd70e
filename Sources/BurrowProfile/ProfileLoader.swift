/// Loads profiles from files: parses TOML or JSON, resolves `extends`, merges,
/// decodes and validates against the host policy.
///
/// File access is injected (`read`), so the module stays free of I/O and tests
/// can load from memory.
package struct ProfileLoader: Sendable {
    /// Returns the contents of a file, or nil when it does not exist.
    package typealias Reader = @Sendable (String) -> String?

    package var policy: HostPolicy
    /// Directories searched for a profile given by name (after the extending file's own directory).
    package var searchPath: [String]
    package var read: Reader

    /// `extends` chains longer than this are refused.
    package static let maxDepth = 8

    package init(policy: HostPolicy, searchPath: [String], read: @escaping Reader) {
        self.policy = policy
        self.searchPath = searchPath
        self.read = read
    }

    /// The outcome of loading: the profile (nil when any error was found), the
    /// files read (the profile first, then what it extends), and every issue.
    package struct Loaded: Sendable {
        package var profile: SecurityProfile?
        package var files: [String]
        package var issues: [ProfileIssue]
        /// The profile's parameters with the values this load substituted.
        package var parameters: [ResolvedParameter] = []
        package var errors: [ProfileIssue] { issues.filter { $0.severity == .error } }
        package var warnings: [ProfileIssue] { issues.filter { $0.severity == .warning } }
    }

    /// Loads the profile named by `reference`: a path (contains '/' or ends in
    /// .toml/.json) or a name looked up in `searchPath` as NAME.toml, NAME.json.
    package func load(_ reference: String, parameters: ParameterValues = .placeholders) -> Loaded {
        guard let (file, text) = resolve(reference, from: nil) else {
            let searched = searchPath.isEmpty ? "no profile directories" : searchPath.joined(separator: ", ")
            let issue = ProfileIssue(
                file: reference, keyPath: "",
                message: isPathReference(reference)
                    ? "no such profile file" : "no profile named '\(reference)' in \(searched)")
            return Loaded(profile: nil, files: [], issues: [issue])
        }
        var files: [String] = []
        var issues: [ProfileIssue] = []
        var origins: [String: String] = [:]
        guard let merged = loadChain(file, text: text, files: &files, origins: &origins, issues: &issues) else {
            return Loaded(profile: nil, files: files, issues: issues)
        }
        return decode(merged, file: file, files: files, origins: origins, issues: issues, parameters: parameters)
    }

    /// Substitutes the parameters, then decodes and validates.
    private func decode(
        _ merged: ConfigValue, file: String, files: [String], origins: [String: String], issues: [ProfileIssue], parameters: ParameterValues
    ) -> Loaded {
        let log = IssueLog(file: file, origins: origins)
        guard let (document, _, resolved) = ProfileParameters.apply(to: merged, values: parameters, policy: policy, log: log) else {
            return Loaded(profile: nil, files: files, issues: issues + log.issues)
        }
        let profile = SecurityProfile.decode(document, policy: policy, log: log)
        return Loaded(profile: profile, files: files, issues: issues + log.issues, parameters: resolved)
    }

    /// Decodes a profile document that is already in memory (the API's JSON).
    /// `extends` names are resolved in `searchPath`.
    package func load(document text: String, format: ConfigFormat, name: String, parameters: ParameterValues = .placeholders) -> Loaded {
        var files = [name]
        var issues: [ProfileIssue] = []
        var origins: [String: String] = [:]
        let document: ConfigValue
        do {
            document = try ConfigValue.parse(text, format: format, file: name)
        } catch {
            return Loaded(profile: nil, files: files, issues: [error])
        }
        guard let merged = mergeParent(of: document, file: name, depth: 0, files: &files, origins: &origins, issues: &issues)
        else { return Loaded(profile: nil, files: files, issues: issues) }
        return decode(merged, file: name, files: files, origins: origins, issues: issues, parameters: parameters)
    }

    private func loadChain(
        _ file: String, text: String, files: inout [String], origins: inout [String: String], issues: inout [ProfileIssue], depth: Int = 0
    ) -> ConfigValue? {
        if files.contains(file) {
            issues.append(ProfileIssue(file: files.last ?? file, keyPath: "extends", message: "extends cycle: \((files + [file]).joined(separator: " -> "))"))
            return nil
        }
        files.append(file)
        guard depth < Self.maxDepth else {
            issues.append(ProfileIssue(file: file, keyPath: "extends", message: "extends chain is deeper than \(Self.maxDepth) profiles"))
            return nil
        }
        guard let format = ConfigFormat(path: file) else {
            issues.append(ProfileIssue(file: file, keyPath: "", message: "unknown profile format: name the file .toml or .json"))
            return nil
        }
        let document: ConfigValue
        do {
            document = try ConfigValue.parse(text, format: format, file: file)
        } catch {
            issues.append(error)
            return nil
        }
        return mergeParent(of: document, file: file, depth: depth, files: &files, origins: &origins, issues: &issues)
    }

    /// Loads what `document` extends (if anything) and lays `document` over it.
    private func mergeParent(
        of document: ConfigValue, file: String, depth: Int, files: inout [String], origins: inout [String: String],
        issues: inout [ProfileIssue]
    ) -> ConfigValue? {
        guard case .table(let entries) = document, let parentValue = entries["extends"] else {
            recordOrigins(document, file: file, path: "", into: &origins)
            return document
        }
        guard case .string(let parentRef) = parentValue else {
            issues.append(ProfileIssue(file: file, keyPath: "extends", message: "expected a profile name or path, found \(parentValue.typeName)"))
            return nil
        }
        guard let (parentFile, parentText) = resolve(parentRef, from: file) else {
            issues.append(
                ProfileIssue(file: file, keyPath: "extends", message: "cannot find the profile '\(parentRef)' to extend (looked beside this file and in \(searchPath.joined(separator: ", ")))"))
            return nil
        }
        guard let parent = loadChain(parentFile, text: parentText, files: &files, origins: &origins, issues: &issues, depth: depth + 1) else {
            return nil
        }
        recordOrigins(document, file: file, path: "", into: &origins)
        return merge(parent, over: document)
    }

    private func isPathReference(_ reference: String) -> Bool {
        reference.contains("/") || ConfigFormat(path: reference) != nil
    }

    /// Finds a profile file: a path as given (relative to the extending file's
    /// directory for `extends`), or NAME.toml / NAME.json in the search path.
    /// Returns the file found and its contents (read once).
    func resolve(_ reference: String, from extendingFile: String?) -> (file: String, text: String)? {
        var candidates: [String] = []
        let directory = extendingFile.map { file in
            file.contains("/") ? String(file[..<(file.lastIndex(of: "/") ?? file.startIndex)]) : "."
        }
        if isPathReference(reference) {
            if reference.hasPrefix("/") || directory == nil {
                candidates = [reference]
            } else if let directory {
                candidates = [directory + "/" + reference]
            }
        } else {
            var dirs: [String] = directory.map { [$0] } ?? []
            dirs += searchPath
            for dir in dirs {
                let stem = "\(dir)/\(reference)"
                candidates += ["\(stem).toml", "\(stem).json"]
            }
        }
        for candidate in candidates {
            if let text = read(candidate) { return (candidate, text) }
        }
        return nil
    }
}

/// `over` laid on `base`: tables merge key by key, everything else (arrays
/// included) is replaced. `extends` itself is not inherited.
func merge(_ base: ConfigValue, over: ConfigValue) -> ConfigValue {
    guard case .table(var merged) = base, case .table(let top) = over else { return over }
    merged["extends"] = nil
    for (key, value) in top where key != "extends" {
        merged[key] = merged[key].map { merge($0, over: value) } ?? value
    }
    return .table(merged)
}

/// Records `file` as the origin of every key path in `value`.
private func recordOrigins(_ value: ConfigValue, file: String, path: String, into origins: inout [String: String]) {
    if !path.isEmpty { origins[path] = file }
    if case .table(let entries) = value {
        for (key, child) in entries {
            recordOrigins(child, file: file, path: path.isEmpty ? key : "\(path).\(key)", into: &origins)
        }
    }
}
