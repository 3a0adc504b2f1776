/// What the agent says about its connection to the zone, said once per change: whom it follows, and
/// whether it reaches its upstream (the manager when primary, the primary otherwise). Repeated events
/// that change nothing (the election machine re-confirming the same primary, every failed retry of an
/// upstream already known to be unreachable) produce no line.
///
/// A pure value; the ``ZoneLink`` holds it behind a lock and logs the lines it returns.
struct LinkNews: Sendable, Equatable {
    /// Whom the agent last said it follows (primary id and epoch); nil when it did not say or led itself.
    private(set) var followed: Follow?
    /// The upstream it last talked to, and whether that worked.
    private(set) var upstream: String?
    private(set) var reachable: Bool?

    struct Follow: Sendable, Equatable {
        var primary: String
        var epoch: Int64
    }

    enum Line: Sendable, Equatable {
        case following(primary: String, epoch: Int64)
        case lost(upstream: String)
        case reached(upstream: String, again: Bool)
    }

    /// The agent follows `primary` at `epoch`; a line only when that is news.
    mutating func follow(_ primary: String, epoch: Int64) -> Line? {
        let next = Follow(primary: primary, epoch: epoch)
        guard followed != next else { return nil }
        followed = next
        return .following(primary: primary, epoch: epoch)
    }

    /// The agent leads the zone itself (or stepped down and follows nobody yet): the next follow is news.
    mutating func forgetFollowed() {
        followed = nil
    }

    /// An exchange with `upstream` worked.
    mutating func exchanged(with upstream: String) -> Line? {
        defer {
            self.upstream = upstream
            reachable = true
        }
        if self.upstream == upstream && reachable == true { return nil }
        return .reached(upstream: upstream, again: self.upstream == upstream && reachable == false)
    }

    /// An exchange with `upstream` failed.
    mutating func failed(with upstream: String) -> Line? {
        defer {
            self.upstream = upstream
            reachable = false
        }
        if self.upstream == upstream && reachable == false { return nil }
        return .lost(upstream: upstream)
    }
}
