/**
 * What a node tells a peer that asks for addresses (docs/ARCHITECTURE.md#lifecycle Advertise, §8.7 scenarios 74–76),
 * with the randomness passed in so every pick is known.
 */
import { assert, describe, it } from "@effect/vitest"
import * as NodeAddress from "../../../src/domain/NodeAddress.ts"
import * as Advertise from "../../../src/domain/peermanager/Advertise.ts"
import * as Connections from "../../../src/domain/peermanager/Connections.ts"
import type { OptionsInput } from "../../../src/services/PeerManager.ts"
import { a, b, c, d, mem, self, stateWith, tcp, withAddresses } from "./fixtures.ts"

const scored = (options: OptionsInput = {}) =>
  withAddresses(stateWith({ peerScores: { [a]: 3, [b]: 2, [c]: 1 }, ...options }), [a, b, c, d].flatMap((id) => [tcp(id), mem(id)]))
const text = (list: ReadonlyArray<NodeAddress.NodeAddress>) => list.map(NodeAddress.format)
const always = (x: number) => () => x

describe("Advertise.advertise", () => {
  it("gives every address but the requester's when the limit is ample, best-ranked first (74)", () => {
    assert.deepStrictEqual(text(Advertise.advertise(scored(), d, 100, always(0))), text([a, b, c].flatMap((id) => [tcp(id), mem(id)])))
    assert.deepStrictEqual(text(Advertise.advertise(scored(), a, 100, always(0))), text([b, c, d].flatMap((id) => [tcp(id), mem(id)])))
  })

  it("gives nothing for limit 0, not even our own address (74, docs/ARCHITECTURE.md#fixed-problems-of-the-original)", () => {
    assert.deepStrictEqual(Advertise.advertise(scored({ selfAddress: `tcp://${self}@10.0.0.1:26656` }), d, 0, always(0)), [])
  })

  it("puts our own address first when it has a host and a port, and counts it in the limit (75)", () => {
    const own = `tcp://${self}@[2001:db8::1]:26657`
    assert.deepStrictEqual(text(Advertise.advertise(stateWith({ selfAddress: own }), d, 100, always(0))), [own])
    assert.deepStrictEqual(text(Advertise.advertise(scored({ selfAddress: own }), d, 2, always(0))), [own, NodeAddress.format(tcp(a))])
    assert.deepStrictEqual(Advertise.advertise(stateWith({ selfAddress: `tcp://${self}@example.com` }), d, 100, always(0)), [])
  })

  it("never gives private or inactive peers (76)", () => {
    const state = Connections.inactivate(scored({ privatePeers: [a] }), c).state
    assert.deepStrictEqual(text(Advertise.advertise(state, d, 100, always(0))), text([tcp(b), mem(b)]))
  })

  it("samples without replacement: a draw at the bottom takes the best, at the top the worst (74)", () => {
    assert.deepStrictEqual(text(Advertise.advertise(scored(), d, 2, always(0))), text([tcp(a), mem(a)]))
    assert.deepStrictEqual(text(Advertise.advertise(scored(), d, 2, always(0.999_999))), text([mem(c), tcp(c)]))
  })

  it("a step down in score makes a peer a quarter as likely", () => {
    // Weights a:1 a:1 b:¼ b:¼ c:1/16 c:1/16 (total 2.625): a's addresses span
    // [0, 2) of the draw, b's [2, 2.5), c's [2.5, 2.625).
    const pick = (at: number) => text(Advertise.advertise(scored(), d, 1, always(at / 2.625)))
    assert.deepStrictEqual([0.5, 1.5, 2.1, 2.3, 2.53, 2.6].map(pick), [tcp(a), mem(a), tcp(b), mem(b), tcp(c), mem(c)].map((x) => text([x])))
  })
})
