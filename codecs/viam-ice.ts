// Viam's ICECandidate message ⇄ the call model's RTCIceCandidateInit shape. proto3 `optional`
// fields keep their presence, so an absent sdpMid stays absent on the other side.
import type { IceCandidate } from "../model/call-model";
import type { ICECandidate } from "../proto/gen/proto/rpc/webrtc/v1/signaling_pb";

export function iceFromWire(c: ICECandidate): IceCandidate {
  return {
    candidate: c.candidate,
    ...(c.sdpMid !== undefined ? { sdpMid: c.sdpMid } : {}),
    ...(c.sdpmLineIndex !== undefined ? { sdpMLineIndex: c.sdpmLineIndex } : {}),
    ...(c.usernameFragment !== undefined ? { usernameFragment: c.usernameFragment } : {}),
  };
}

export function iceToWire(c: IceCandidate) {
  return {
    candidate: c.candidate,
    ...(c.sdpMid !== undefined ? { sdpMid: c.sdpMid } : {}),
    ...(c.sdpMLineIndex !== undefined ? { sdpmLineIndex: c.sdpMLineIndex } : {}),
    ...(c.usernameFragment !== undefined ? { usernameFragment: c.usernameFragment } : {}),
  };
}
