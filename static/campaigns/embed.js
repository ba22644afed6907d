/* LeadCRM embed script: optional; the form works without it.
 *
 * For every <form data-leadcrm-form> on the page it
 *  - copies utm_* parameters of the page's address into the hidden fields,
 *  - fetches a time-trap token, so the post is known to come from a person
 *    who saw the form,
 *  - sends the form in the background and shows the thank-you message in
 *    place of the form (or goes to the thank-you page), showing errors next
 *    to the form when the details are refused.
 * Anything unexpected falls back to the ordinary post.
 */
(function () {
  "use strict";
  var UTM = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"];

  function field(form, name) {
    var input = form.querySelector('input[name="' + name + '"]');
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      form.appendChild(input);
    }
    return input;
  }

  function fillUtm(form) {
    var params = new URLSearchParams(window.location.search);
    UTM.forEach(function (name) {
      var input = form.querySelector('input[name="' + name + '"]');
      if (input && params.get(name)) {
        input.value = params.get(name).slice(0, 200);
      }
    });
  }

  function fetchToken(form) {
    if (!form.dataset.tokenUrl) {
      return;
    }
    fetch(form.dataset.tokenUrl, { credentials: "omit" })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (body.field && body.token) {
          field(form, body.field).value = body.token;
        }
      })
      .catch(function () { /* Without a token the post still goes. */ });
  }

  function showErrors(form, errors) {
    var box = form.querySelector(".leadcrm-errors");
    if (!box) {
      box = document.createElement("ul");
      box.className = "leadcrm-errors";
      box.setAttribute("role", "alert");
      form.insertBefore(box, form.firstChild);
    }
    box.textContent = "";
    Object.keys(errors).forEach(function (name) {
      errors[name].forEach(function (message) {
        var item = document.createElement("li");
        item.textContent = message;
        box.appendChild(item);
      });
    });
  }

  function thank(form) {
    if (form.dataset.redirect) {
      window.location.assign(form.dataset.redirect);
      return;
    }
    var message = document.createElement("p");
    message.className = "leadcrm-thanks";
    message.setAttribute("role", "status");
    message.textContent = form.dataset.thanks || "Thank you!";
    form.replaceWith(message);
  }

  function send(event) {
    var form = event.target;
    if (!window.fetch || !window.FormData) {
      return;
    }
    event.preventDefault();
    var button = form.querySelector("[type=submit]");
    if (button) {
      button.disabled = true;
    }
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "omit"
    })
      .then(function (response) {
        return response.json().then(function (body) {
          if (response.ok) {
            thank(form);
          } else {
            showErrors(form, body.errors || {});
            if (button) {
              button.disabled = false;
            }
          }
        });
      })
      .catch(function () {
        form.removeEventListener("submit", send);
        form.submit();
      });
  }

  function init() {
    document.querySelectorAll("form[data-leadcrm-form]").forEach(function (form) {
      fillUtm(form);
      fetchToken(form);
      form.addEventListener("submit", send);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
