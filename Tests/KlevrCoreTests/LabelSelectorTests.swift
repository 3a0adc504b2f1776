import KlevrCore
import Testing

@Suite struct LabelSelectorTests {
    static let prodWeb = ["env": "prod", "role": "web", "klevr.io/rack": "r1"]
    static let prodDB = ["env": "prod", "role": "db"]
    static let devBare = ["env": "dev"]
    static let unlabelled: [String: String] = [:]
    static let agents = [prodWeb, prodDB, devBare, unlabelled]

    /// Which of ``agents`` each selector picks (by index).
    @Test(arguments: [
        ("env=prod", [0, 1]),
        ("env==prod", [0, 1]),
        (" env = prod ", [0, 1]),
        ("env=prod,role!=db", [0]),
        ("role!=db", [0, 2, 3]),
        ("role", [0, 1]),
        ("!role", [2, 3]),
        ("! role", [2, 3]),
        ("env in (prod, dev)", [0, 1, 2]),
        ("env notin (prod)", [2, 3]),
        ("role in (web,db),env=prod", [0, 1]),
        ("klevr.io/rack=r1", [0]),
        ("env=", []),
        ("!env", [3]),
    ])
    func selects(selector: String, expected: [Int]) throws {
        let parsed = try LabelSelector(selector)
        let picked = Self.agents.indices.filter { parsed.matches(Self.agents[$0]) }
        #expect(picked == expected)
    }

    @Test func emptyValueMatchesAnEmptyLabel() throws {
        #expect(try LabelSelector("gpu=").matches(["gpu": ""]))
        #expect(try !LabelSelector("gpu=").matches([:]))
    }

    @Test func canonicalForm() throws {
        #expect(try LabelSelector(" env == prod ,!x, role notin ( a , b,a )").description == "env=prod,!x,role notin (a,b)")
    }

    @Test(arguments: [
        ("", 1, "empty"),
        ("   ", 1, "empty"),
        ("env=prod,", 9, "ends with a comma"),
        ("env=prod,,x", 10, "expected a label key"),
        ("env>prod", 4, "expected an operator"),
        ("env!prod", 4, "expected \"!=\""),
        ("env=prod role=db", 10, "expected \",\""),
        ("env in prod", 8, "expected \"(\""),
        ("env in (a,b", 12, "expected \")\""),
        ("env in (a;b)", 10, "unexpected character \";\""),
        ("env in ()", 9, "the list of values is empty"),
        ("-env=prod", 1, "label key \"-env\""),
        ("a/b/c=x", 1, "at most one \"/\""),
        ("Klevr.io/x=y", 1, "DNS subdomain"),
        ("env=pr/od", 7, "unexpected character \"/\""),
        ("env=-prod", 5, "label value \"-prod\""),
        ("ümlaut=x", 1, "expected a label key"),
    ])
    func refusals(selector: String, position: Int, message: String) {
        do {
            let parsed = try LabelSelector(selector)
            Issue.record("accepted \(parsed)")
        } catch {
            #expect(error.position == position, "\(error)")
            #expect(error.message.contains(message), "\(error)")
        }
    }

    @Test func longSelectorsAreRefused() {
        #expect(throws: LabelError.self) { try LabelSelector(String(repeating: "a=b,", count: 300) + "a=b") }
    }

    @Test func labelSyntax() {
        #expect(Labels.keyProblem("env") == nil)
        #expect(Labels.keyProblem("klevr.io/zone-1") == nil)
        #expect(Labels.keyProblem("A_b.c-9") == nil)
        #expect(Labels.keyProblem(String(repeating: "a", count: 63)) == nil)
        #expect(Labels.keyProblem(String(repeating: "a", count: 64)) != nil)
        #expect(Labels.keyProblem("") != nil)
        #expect(Labels.keyProblem("x/") != nil)
        #expect(Labels.keyProblem("/x") != nil)
        #expect(Labels.keyProblem("env_") != nil)
        #expect(Labels.keyProblem(String(repeating: "a", count: 254) + "/x") != nil)
        #expect(Labels.valueProblem("") == nil)
        #expect(Labels.valueProblem("v1.2_3-x") == nil)
        #expect(Labels.valueProblem("a b") != nil)
        #expect(Labels.valueProblem(String(repeating: "v", count: 64)) != nil)
    }

    @Test func parsingAgentLabels() throws {
        #expect(try Labels(parsing: "env=prod, role=web,gpu=").values == ["env": "prod", "role": "web", "gpu": ""])
        #expect(try Labels(parsing: "").values.isEmpty)
        for (text, position, message) in [
            ("env", 1, "expected key=value"), ("env=prod,", 9, "ends with a comma"), ("env=a,env=b", 7, "given twice"),
            ("env=a,,b=c", 7, "empty label"), ("e nv=a", 1, "label key \"e nv\""), ("env=a b", 5, "value of label \"env\""),
        ] {
            do {
                let labels = try Labels(parsing: text)
                Issue.record("accepted \(labels)")
            } catch {
                #expect(error.position == position, "\(text): \(error)")
                #expect(error.message.contains(message), "\(text): \(error)")
            }
        }
        #expect(throws: LabelError.self) { try Labels(Dictionary(uniqueKeysWithValues: (0...64).map { ("k\($0)", "v") })) }
        #expect(throws: LabelError(position: nil, message: "value of label \"env\": a value may contain letters, digits, \"-\", \"_\" and \".\", and must start and end with a letter or digit")) {
            try Labels(["env": "prod!"])
        }
    }
}
