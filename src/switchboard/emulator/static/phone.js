// The browser is the WhatsApp user: its RTCPeerConnection offers, the emulator relays the offer in a
// connect webhook and hands back the business's answer (pre_accept / accept) through a long poll.
"use strict";
const $ = (id) => document.getElementById(id);
let pc = null;
let callId = null;
let sender = null;

function setStatus(text) { $("status").textContent = text; }

async function loadNumbers() {
  const numbers = await (await fetch("/phone/numbers")).json();
  for (const n of numbers) {
    const option = document.createElement("option");
    option.value = n.phone_number_id;
    option.textContent = `${n.display_phone_number} (${n.phone_number_id})`;
    $("number").appendChild(option);
  }
}

function iceComplete(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    peer.addEventListener("icegatheringstatechange", () => {
      if (peer.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, 3000);
  });
}

async function call() {
  $("call").disabled = true;
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  pc = new RTCPeerConnection();
  pc.ontrack = (event) => { $("remote").srcObject = event.streams[0] || new MediaStream([event.track]); };
  pc.onconnectionstatechange = () => setStatus(`media: ${pc.connectionState}`);
  for (const track of stream.getAudioTracks()) sender = pc.addTrack(track, stream);
  await pc.setLocalDescription(await pc.createOffer());
  await iceComplete(pc);
  const response = await fetch("/phone/calls", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      phone_number_id: $("number").value, wa_id: $("wa_id").value, name: $("name").value,
      sdp: pc.localDescription.sdp,
    }),
  });
  callId = (await response.json()).call_id;
  $("hangup").disabled = false;
  setStatus("ringing");
  poll(0);
}

async function poll(since) {
  let applied = false;
  while (callId) {
    const current = callId;
    const state = await (await fetch(`/phone/calls/${current}?since=${since}`)).json();
    since = state.states.length;
    if (state.sdp && !applied) {
      applied = true;
      await pc.setRemoteDescription({ type: "answer", sdp: state.sdp });
    }
    const last = state.states[state.states.length - 1];
    setStatus(last.toLowerCase());
    if (last === "TERMINATED") { cleanup(); return; }
  }
}

async function hangup() {
  if (callId) await fetch(`/phone/calls/${callId}/hangup`, { method: "POST" });
  cleanup();
}

function cleanup() {
  callId = null;
  if (pc) pc.close();
  pc = null;
  sender = null;
  $("call").disabled = false;
  $("hangup").disabled = true;
}

function press(key) {
  if (sender && sender.dtmf) sender.dtmf.insertDTMF(key, 100, 70);
}

for (const key of "123456789*0#") {
  const button = document.createElement("button");
  button.textContent = key;
  button.onclick = () => press(key);
  $("keypad").appendChild(button);
}
$("call").onclick = call;
$("hangup").onclick = hangup;
loadNumbers();
