// htmx drops a 4xx/5xx answer and a failed connection without a word: say what happened at the top
// of the page. A form's own 4xx fragment (X-Form-Error) is swapped as a success and never gets here.
(function () {
  "use strict";
  var STATUS_TEXT = {
    401: "登录已过期，请重新登录",
    403: "没有权限执行此操作",
    503: "系统繁忙，请稍后重试",
  };
  var failed = null;

  function notice() {
    return document.getElementById("request-error");
  }

  // The server's own Chinese message: the API's {"error": {"message"}}, a plain {"message"} or
  // {"detail"}, or the console's error page.
  function serverMessage(xhr) {
    var type = xhr.getResponseHeader("Content-Type") || "";
    if (type.indexOf("json") >= 0) {
      try {
        var body = JSON.parse(xhr.responseText);
        var found = (body.error && body.error.message) || body.message || body.detail;
        return typeof found === "string" ? found : "";
      } catch (e) {
        return "";
      }
    }
    if (type.indexOf("text/html") === 0) {
      var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var heading = page.querySelector("[data-testid=error-message]");
      return heading ? heading.textContent.trim() : "";
    }
    return "";
  }

  function show(text, status, elt) {
    var box = notice();
    if (!box) return;
    failed = elt;
    var message = box.querySelector("[data-role=message]");
    message.textContent = text;
    if (status === 401) {
      var login = document.createElement("a");
      login.href = "/console/login?next=" + encodeURIComponent(location.pathname + location.search);
      login.textContent = "前往登录页";
      message.append(" ", login);
    }
    box.hidden = false;
  }

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var text = serverMessage(xhr) || STATUS_TEXT[xhr.status] || "操作失败（HTTP 状态码 " + xhr.status + "），请刷新后重试";
    show(text, xhr.status, event.detail.elt);
  });
  document.addEventListener("htmx:sendError", function (event) {
    show("无法连接服务器，请检查网络后重试", 0, event.detail.elt);
  });
  // The same button or poll working again means the trouble is over.
  document.addEventListener("htmx:afterRequest", function (event) {
    var box = notice();
    if (box && event.detail.successful && event.detail.elt === failed) box.hidden = true;
  });
  document.addEventListener("click", function (event) {
    var box = notice();
    if (box && event.target.closest("#request-error [data-role=close]")) box.hidden = true;
  });
})();
