"""What catalog tells the apps above it (they connect in their AppConfig.ready; catalog
imports none of them)."""
from django.dispatch import Signal

#: A large photo's working copy was made by its decode job (`catalog.work.photo_decode_make`),
#: inside the transaction that stores it: `photo` (a ProductPhoto, now decoded). Receivers
#: start the work an upload starts on a photo decoded in the request (studio: the cutout); an
#: exception rolls the decode back and fails the job. Not sent for photos decoded in the
#: upload request: their work starts through photo_upload's `then`.
photo_decoded = Signal()
