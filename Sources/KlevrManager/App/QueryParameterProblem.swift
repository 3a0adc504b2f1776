import Foundation
import HTTPTypes
import KlevrCore

/// The problem for a query parameter the generated code could not decode.
///
/// The runtime decodes each parameter on its own, and its decoding error names none, so the parameter
/// is found again here from the request, by the rule of each of the document's query parameters that
/// is not a plain string: the answer is a 422 naming the field, as for a body.
enum QueryParameterProblem {
    struct Rule: Sendable {
        let admits: @Sendable (String) -> Bool
        let message: String
    }

    static let rules: [String: Rule] = {
        let integer = Rule(admits: { Int64($0) != nil }, message: "must be an integer")
        let boolean = Rule(admits: { $0 == "true" || $0 == "false" }, message: "must be true or false")
        return [
            "limit": Rule(admits: { Int($0) != nil }, message: "must be an integer from 1 to 500"),
            "after": integer, "since": integer,
            "follow": boolean, "force": boolean, "all": boolean,
            "status": Rule(
                admits: { RunStatus(rawValue: $0) != nil }, message: "one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))"),
        ]
    }()

    static func problem(for request: HTTPRequest) -> Problem {
        let query = request.path.flatMap { URLComponents(string: $0)?.queryItems } ?? []
        for item in query {
            if let rule = rules[item.name], !rule.admits(item.value ?? "") { return Problem.invalid(item.name, rule.message) }
        }
        return Problem.invalid("query", "a parameter does not read as its documented type")
    }
}
