"""RTCBot's own robot from its "Connecting over 4G" tutorial ("Remote Code"), run
against a room of rtcbot-relay: `python rtcbot_robot.py http://RELAY/ROOM`.

The tutorial's code, with these changes for a test on a machine with no camera:
- `TestCamera` stands in for `CVCamera`: the same kind of RTCBot producer (a thread
  putting BGR numpy frames, 320x240 at 30 fps as CVCamera's defaults), mid-grey with
  rtcbot-rs's frame stamp painted in, so the Rust client can tell its frames apart;
- the websocket goes to the relay's room (the tutorial's rtcbot.dev form, a room's
  address taking both the robot's websocket and the browsers' POSTs), from argv;
- `RTCConnection` gets no STUN server: the tutorial's default asks Google's, which a
  test on one machine does not need and must not depend on reaching;
- lines for the test on stdout (run it with `python -u`): "Started WebRTC" as in the
  tutorial, JSON events from `stamp.event`; and each data-channel message is echoed.
"""

import asyncio
import logging
import sys
import time

import numpy as np
from aiortc import RTCConfiguration
from rtcbot import RTCConnection, Websocket
from rtcbot.base import ThreadedSubscriptionProducer
from rtcbot.subscriptions import MostRecentSubscription

from stamp import event, fail_on_error, paint


class TestCamera(ThreadedSubscriptionProducer):
    """CVCamera without a camera: frames from a thread, paced like a camera."""

    _log = logging.getLogger("TestCamera")

    def __init__(self, width=320, height=240, fps=30, loop=None):
        self._width = width
        self._height = height
        self._fps = fps
        super().__init__(MostRecentSubscription, self._log, loop=loop)

    def _producer(self):
        self._setReady(True)
        number = 0
        while not self._shouldClose:
            frame = np.full((self._height, self._width, 3), 128, np.uint8)
            paint(frame, number)
            self._put_nowait(frame)
            number += 1
            time.sleep(1 / self._fps)
        self._setReady(False)


cam = TestCamera()
conn = RTCConnection(rtcConfiguration=RTCConfiguration([]))
conn.video.putSubscription(cam)


# For the test: what the client sends on the data channel comes back.
@conn.subscribe
def onMessage(msg):
    event("message", data=msg)
    conn.put_nowait({"echo": msg})


# Connect establishes a websocket connection to the server,
# and uses it to send and receive info to establish webRTC connection.
async def connect():
    ws = Websocket(sys.argv[1])
    ws.onReady(lambda: event("in_room"))
    ws.onError(fail_on_error("the websocket to the relay"))
    remoteDescription = await ws.get()
    robotDescription = await conn.getLocalDescription(remoteDescription)
    ws.put_nowait(robotDescription)
    print("Started WebRTC")
    await ws.close()


asyncio.ensure_future(connect())
try:
    asyncio.get_event_loop().run_forever()
finally:
    cam.close()
    conn.close()
