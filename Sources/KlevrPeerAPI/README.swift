// KlevrPeerAPI: the agents' peer API. Its wire types, server protocol (`APIProtocol`) and client are
// generated at build time by swift-openapi-generator from `openapi.yaml` in this folder, which is the
// contract (see `openapi-generator-config.yaml`). Hand-written additions to the generated types go in
// this module's other files.
