"""A stock RTCBot client (the desktop side of RTCBot's "Offloading Computation"
tutorial, POSTing to a room as its "Connecting over 4G" tutorial does with
rtcbot.dev), watching an rtcbot-rs robot through rtcbot-relay:
`python rtcbot_client.py http://RELAY/ROOM`.

Changes for a test: no display (each decoded frame's size and the rtcbot-rs frame stamp
read from its pixels go to stdout instead), no STUN server (see rtcbot_robot.py), a
message sent on the data channel instead of a gamepad's, and every message received
printed. Lines for the test on stdout, JSON from `stamp.event` (run it with `python -u`).
"""

import asyncio
import json
import os
import sys

import aiohttp
from aiortc import RTCConfiguration
from rtcbot import RTCConnection

from stamp import event, fail_on_error, read

FRAMES_REPORTED = 10

conn = RTCConnection(rtcConfiguration=RTCConfiguration([]))
conn.onError(fail_on_error("the connection"))
frames = 0


@conn.video.subscribe
def onFrame(frame):
    global frames
    frames += 1
    if frames <= FRAMES_REPORTED:
        stamp = read(frame)
        event(
            "frame",
            width=frame.shape[1],
            height=frame.shape[0],
            stamp=None if stamp is None else stamp[0],
        )


@conn.subscribe
def onMessage(msg):
    event("message", data=msg)


async def connect():
    localDescription = await conn.getLocalDescription()
    async with aiohttp.ClientSession() as session:
        async with session.post(sys.argv[1], data=json.dumps(localDescription)) as resp:
            if resp.status != 200:
                event("error", what="the POST", status=resp.status, body=await resp.text())
                os._exit(1)
            response = await resp.json()
            await conn.setRemoteDescription(response)
    event("answered")
    # Sent once the data channel opens (RTCBot queues it until then).
    conn.put_nowait({"hello": "from RTCBot"})


asyncio.ensure_future(connect())
try:
    asyncio.get_event_loop().run_forever()
finally:
    conn.close()
