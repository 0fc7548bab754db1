// The browser is the WhatsApp user: its RTCPeerConnection offers, the emulator relays the offer in a
// connect webhook and hands back the business's answer (pre_accept / accept) through a long poll.
"use strict";
const $ = (id) => document.getElementById(id);
let pc = null;
let callId = null;
let sender = null;
let silence = null;
let timer = null;

function setCallState(text) { $("call-state").textContent = text; }
function setMediaState(text) { $("media-state").textContent = text; }

function showNote(text) {
  $("note").textContent = text;
  $("note").hidden = !text;
}

function startTimer() {
  const started = Date.now();
  const tick = () => {
    const seconds = Math.floor((Date.now() - started) / 1000);
    const mm = String(Math.floor(seconds / 60)).padStart(2, "0");
    $("timer").textContent = `${mm}:${String(seconds % 60).padStart(2, "0")}`;
  };
  tick();
  timer = setInterval(tick, 250);
}

function stopTimer() {
  if (timer !== null) clearInterval(timer);
  timer = null;
}

async function loadNumbers() {
  try {
    const numbers = await (await fetch("/phone/numbers")).json();
    for (const n of numbers) {
      const option = document.createElement("option");
      option.value = n.phone_number_id;
      option.textContent = `${n.display_phone_number} (${n.phone_number_id})`;
      $("number").appendChild(option);
    }
    if (!numbers.length) showNote("The emulator has no business numbers to call.");
  } catch (error) {
    showNote(`Cannot load the business numbers from the emulator: ${error}`);
  }
}

// Without a microphone the call still goes ahead: the business hears silence from a generated track,
// and because a track is sent the keypad's RFC 4733 digits still work.
function silentTrack() {
  const context = new AudioContext();
  const source = context.createConstantSource();
  source.offset.value = 0;
  const destination = context.createMediaStreamDestination();
  source.connect(destination);
  source.start();
  context.resume();
  silence = context;
  return destination.stream;
}

async function microphone() {
  const constraints = { audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } };
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return { stream: null, reason: "this page is not a secure context (open it on localhost or https)" };
  }
  try {
    return { stream: await navigator.mediaDevices.getUserMedia(constraints), reason: null };
  } catch (error) {
    return { stream: null, reason: `${error.name}: ${error.message}` };
  }
}

async function addAudio(peer) {
  const mic = await microphone();
  if (mic.stream) {
    for (const track of mic.stream.getAudioTracks()) sender = peer.addTrack(track, mic.stream);
    return;
  }
  try {
    const stream = silentTrack();
    sender = peer.addTrack(stream.getAudioTracks()[0], stream);
    showNote(`No microphone (${mic.reason}). Calling receive-only: you hear the business, it hears ` +
      "silence; the keypad still sends keys.");
  } catch (error) {
    peer.addTransceiver("audio", { direction: "recvonly" });
    showNote(`No microphone (${mic.reason}). Calling receive-only: you hear the business, it hears ` +
      "nothing, and keys cannot be sent.");
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
  if (typeof RTCPeerConnection === "undefined") {
    showNote("This browser cannot place the call: it has no WebRTC (RTCPeerConnection).");
    return;
  }
  $("call").disabled = true;
  showNote("");
  $("digits").textContent = "";
  $("timer").textContent = "00:00";
  setCallState("starting");
  setMediaState("new");
  try {
    await placeCall();
  } catch (error) {
    showNote(`The call could not be placed: ${error}`);
    cleanup("failed");
  }
}

async function placeCall() {
  pc = new RTCPeerConnection();
  const peer = pc;
  peer.ontrack = (event) => { $("remote").srcObject = event.streams[0] || new MediaStream([event.track]); };
  peer.onconnectionstatechange = () => { if (pc === peer) setMediaState(peer.connectionState); };
  await addAudio(peer);
  await peer.setLocalDescription(await peer.createOffer());
  await iceComplete(peer);
  const response = await fetch("/phone/calls", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      phone_number_id: $("number").value, wa_id: $("wa_id").value, name: $("name").value,
      sdp: peer.localDescription.sdp,
    }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `the emulator answered ${response.status}`);
  callId = body.call_id;
  $("hangup").disabled = false;
  setCallState("ringing");
  poll(callId);
}

async function poll(current) {
  let since = 0;
  let applied = false;
  while (callId === current) {
    let state;
    try {
      state = await (await fetch(`/phone/calls/${current}?since=${since}`)).json();
    } catch (error) {
      showNote(`Lost contact with the emulator: ${error}`);
      cleanup("unknown");
      return;
    }
    if (callId !== current) return;
    since = state.states.length;
    if (state.sdp && !applied) {
      applied = true;
      await pc.setRemoteDescription({ type: "answer", sdp: state.sdp });
    }
    const last = state.states[state.states.length - 1];
    if (last === "ACCEPTED" && timer === null) startTimer();
    if (last === "TERMINATED") { cleanup("terminated"); return; }
    setCallState(last.toLowerCase().replace("_", "-"));
  }
}

async function hangup() {
  const current = callId;
  callId = null;
  if (current) await fetch(`/phone/calls/${current}/hangup`, { method: "POST" }).catch(() => null);
  cleanup("terminated");
}

function cleanup(finalState) {
  callId = null;
  stopTimer();
  if (pc) pc.close();
  pc = null;
  sender = null;
  if (silence) silence.close();
  silence = null;
  setCallState(finalState);
  setMediaState("closed");
  $("call").disabled = false;
  $("hangup").disabled = true;
}

function press(key) {
  if (!sender || !sender.dtmf || !sender.dtmf.canInsertDTMF) return;
  sender.dtmf.insertDTMF(key, 100, 70);
  $("digits").textContent += key;
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
