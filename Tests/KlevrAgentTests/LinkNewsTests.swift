@testable import KlevrAgent
import Testing

/// The agent says what changed in its link to the zone once, not at every retry or re-confirmation.
@Suite struct LinkNewsTests {
    @Test func theSamePrimaryIsAnnouncedOnce() {
        var news = LinkNews()
        #expect(news.follow("a", epoch: 1) == .following(primary: "a", epoch: 1))
        for _ in 0..<10 { #expect(news.follow("a", epoch: 1) == nil) }
        #expect(news.follow("a", epoch: 2) == .following(primary: "a", epoch: 2))
        #expect(news.follow("b", epoch: 2) == .following(primary: "b", epoch: 2))
        news.forgetFollowed()
        #expect(news.follow("b", epoch: 2) == .following(primary: "b", epoch: 2))
    }

    @Test func losingAndRegainingTheUpstreamIsSaidOnceEach() {
        var news = LinkNews()
        #expect(news.exchanged(with: "the manager") == .reached(upstream: "the manager", again: false))
        #expect(news.exchanged(with: "the manager") == nil)
        #expect(news.failed(with: "the manager") == .lost(upstream: "the manager"))
        for _ in 0..<10 { #expect(news.failed(with: "the manager") == nil) }
        #expect(news.exchanged(with: "the manager") == .reached(upstream: "the manager", again: true))
        #expect(news.exchanged(with: "the manager") == nil)
        // A new upstream is news, reached or not.
        #expect(news.failed(with: "primary p") == .lost(upstream: "primary p"))
        #expect(news.exchanged(with: "primary q") == .reached(upstream: "primary q", again: false))
    }
}
